"""The training loop: stage 1 (reconstruction) then stage 2 (morphable prior), resumable.

Every step draws consecutive frame pairs (for the velocity loss). Each generated crop is composited
over a background crop (half the time another frame's, so the alpha learns where the head and body
are); stage 2 adds auxiliary pairs supervised by warped pseudo targets, the frozen segmenter and the
velocity loss, while real pairs keep being replayed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from talkinghead.generator.conditioning import Conditioner, FrameBatch
from talkinghead.generator.guide import MASK_NAMES
from talkinghead.generator.network import Generator
from talkinghead.params import ParamSequence
from talkinghead.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from talkinghead.training.dataset import VideoData
from talkinghead.training.losses import (
    LossConfig,
    maybe_perceptual,
    reconstruction_loss,
    region_weights,
    ssim_loss,
    velocity_loss,
    weighted_l1,
)
from talkinghead.training.segmenter import Segmenter
from talkinghead.training.stage2 import AuxConfig, AuxSampler, match_features, nearest_frames, pseudo_targets


@dataclass
class TrainConfig:
    stage1_steps: int = 2000
    stage2_steps: int = 1000
    batch_size: int = 8  # frames per step, as consecutive pairs; stage 2 splits them real / auxiliary
    aux_share: float = 0.5  # stage 2: half the pairs are auxiliary, half replay real frames
    lr: float = 2e-3
    # learned grids (textures, screen features) get few gradients per texel: they learn faster
    grid_lr: float = 1e-2
    segmenter_lr: float = 2e-3
    final_lr_factor: float = 0.1  # cosine decay to 10 % over each stage: fine detail settles at the end
    # weight of the composite-over-another-frame term that teaches alpha (see Trainer._real_loss)
    alpha_weight: float = 0.5
    # real frames are trained on square patches of this fraction of the crop: the network is
    # pixel-wise, so a half-size patch costs a quarter and teaches the same; 1.0 trains whole crops
    patch: float = 0.5
    # how often the patch is centred on the mouth (otherwise anywhere): the mouth matters most
    mouth_patch: float = 0.5
    pseudo_weight: float = 1.0
    geometry_weight: float = 0.1
    checkpoint_every: int = 200
    preview_every: int = 250
    preview_frames: int = 3
    losses: LossConfig = field(default_factory=LossConfig)
    aux: AuxConfig = field(default_factory=AuxConfig)

    @property
    def total_steps(self) -> int:
        return self.stage1_steps + self.stage2_steps


@dataclass
class AuxSource:
    """Fixed auxiliary parameters (offline mode: the driving sequence) with their crop boxes."""

    params: ParamSequence
    boxes: np.ndarray


class Trainer:
    """Owns the generator, the segmenter, their optimizers and the step counter."""

    def __init__(
        self,
        data: VideoData,
        conditioner: Conditioner,
        generator: Generator,
        segmenter: Segmenter | None = None,
        config: TrainConfig | None = None,
        work_dir: str | Path | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        quiet: bool = False,
        aux_source: AuxSource | None = None,
        segmenter_trained: bool = False,
    ) -> None:
        self.data = data
        self.conditioner = conditioner
        self.config = config or TrainConfig()
        self.device = torch.device(device)
        self.generator = generator.to(self.device)
        self.segmenter = (segmenter or Segmenter()).to(self.device)
        self.segmenter_trained = segmenter_trained
        self.work_dir = None if work_dir is None else Path(work_dir)
        self.quiet = quiet
        self.aux_source = aux_source
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        grids = [
            p
            for n, p in generator.named_parameters()
            if n.startswith(("face_texture", "head_texture", "screen"))
        ]
        rest = [
            p
            for n, p in generator.named_parameters()
            if not n.startswith(("face_texture", "head_texture", "screen"))
        ]
        c = self.config
        self.optimizer = torch.optim.Adam([{"params": rest, "lr": c.lr}, {"params": grids, "lr": c.grid_lr}])
        self.seg_optimizer = torch.optim.Adam(self.segmenter.parameters(), lr=c.segmenter_lr)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.sampler = AuxSampler(data.params, c.aux)
        self.match_bank = match_features(data.params, conditioner.model.names, c.aux)
        self.perceptual = maybe_perceptual()
        if self.perceptual is not None:
            self.perceptual.to(self.device)
        self.preview_index = np.linspace(0, len(data) - 2, c.preview_frames).astype(int)

    # ----------------------------------------------------------------- state
    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "segmenter": self.segmenter}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer, "segmenter": self.seg_optimizer}

    def save(self) -> None:
        if self.work_dir is None:
            return
        extra = {
            "history": self.history,
            "rng": self.rng.bit_generator.state,
            "segmenter_trained": self.segmenter_trained,
            "config": {k: v for k, v in asdict(self.config).items() if not isinstance(v, dict)},
        }
        save_checkpoint(self.work_dir / "checkpoints", self.step, self._modules(), self._optimizers(), extra)

    def resume(self) -> bool:
        """Continue from the last checkpoint in the work folder, if there is one."""
        if self.work_dir is None or not has_checkpoint(self.work_dir / "checkpoints"):
            return False
        self.step, extra = load_checkpoint(self.work_dir / "checkpoints", self._modules(), self._optimizers())
        self.history = list(extra.get("history", []))
        if "rng" in extra:
            self.rng.bit_generator.state = extra["rng"]
        self.segmenter_trained = bool(extra.get("segmenter_trained", False))
        return True

    # ------------------------------------------------------------- schedule
    def _set_lr(self) -> None:
        c = self.config
        if self.step < c.stage1_steps:
            t, n = self.step, c.stage1_steps
        else:
            t, n = self.step - c.stage1_steps, max(c.stage2_steps, 1)
        f = c.final_lr_factor + (1 - c.final_lr_factor) * 0.5 * (
            1 + math.cos(math.pi * min(t / max(n, 1), 1.0))
        )
        self.optimizer.param_groups[0]["lr"] = c.lr * f
        self.optimizer.param_groups[1]["lr"] = c.grid_lr * f

    # --------------------------------------------------------------- batches
    def _real_batch(self, pairs: int) -> tuple[np.ndarray, FrameBatch, torch.Tensor]:
        idx = self.data.pairs(self.rng, pairs)
        batch = self.conditioner.frames(self.data.params, idx, self.data.boxes[idx], self.device)
        return idx, batch, self.data.images(idx, self.device)

    def _other_backgrounds(self, pairs: int) -> torch.Tensor:
        """Crops of random other frames, one per pair (what a background loop would show instead)."""
        other = self.rng.integers(0, len(self.data), pairs)
        return self.data.images(np.repeat(other, 2), self.device)

    def _aux_batch(self, pairs: int) -> tuple[FrameBatch, torch.Tensor, torch.Tensor]:
        """Auxiliary pairs with pseudo targets ``[2p,3,r,r]`` and their weights ``[2p,1,r,r]``."""
        seqs, boxes = [], []
        for _ in range(pairs):
            if self.aux_source is not None:
                src = self.aux_source
                t = int(self.rng.integers(0, max(len(src.params) - 1, 1)))
                t1 = min(t + 1, len(src.params) - 1)
                seqs.append(
                    src.params.slice(t, t1 + 1) if t1 > t else src.params.slice(t, t + 1).with_arrays()
                )
                boxes.append(src.boxes[[t, t1]])
            else:
                seq, anchor = self.sampler.sample(self.rng)
                t = int(self.rng.integers(0, len(seq) - 1))
                seqs.append(seq.slice(t, t + 2))
                boxes.append(np.repeat(self.data.boxes[anchor : anchor + 1], 2, 0))
        expr = np.concatenate([_pair(s.expression) for s in seqs])
        rot = np.concatenate([_pair(s.rotation) for s in seqs])
        trans = np.concatenate([_pair(s.translation) for s in seqs])
        scale = np.concatenate([_pair(s.scale) for s in seqs])
        gaze = None if any(s.gaze is None for s in seqs) else np.concatenate([_pair(s.gaze) for s in seqs])
        box = np.concatenate(boxes)
        batch = self.conditioner.build(expr, rot, trans, scale, gaze, box, self.device, keep_rasters=True)
        # one source frame per pair, so the pseudo targets of a pair differ only by the geometry change
        names = self.conditioner.model.names
        w = np.array(
            [self.config.aux.mouth_match if n.startswith(("jaw", "mouth")) else 1.0 for n in names],
            np.float32,
        )
        query = np.concatenate([expr[0::2] * w, rot[0::2] * self.config.aux.rotation_match], 1)
        src = np.repeat(nearest_frames(query, self.match_bank), 2)
        src_verts = self.conditioner.vertices(
            self.data.params.expression[src], self.data.params.rotation[src],
            self.data.params.translation[src], self.data.params.scale[src], self.data.boxes[src],
        )  # fmt: skip
        targets, weights = pseudo_targets(
            self.conditioner.rasterizer,
            batch.rasters,
            src_verts,
            self.data.images(src, self.device),
            self.config.aux,
        )
        return batch, targets, weights

    # ------------------------------------------------------------------ steps
    def _real_loss(self, pairs: int) -> tuple[torch.Tensor, dict[str, float], tuple]:
        """Reconstruction of real pairs, plus the alpha term.

        The RGB output is always compared with the frame itself. Alpha is learned from a composite
        over *another* frame's crop (RGB detached): it opens where the generated pixel beats the
        background's, i.e. over the moving head and body, and stays closed on a static background.
        Compositing over the frame itself would let alpha = 0 reproduce the target for free.
        """
        idx, batch, target = self._real_batch(pairs)
        full_target = target
        bg = self._other_backgrounds(pairs)
        guide, window = batch.guide, None
        if self.config.patch < 1.0:
            window, size = self._window(batch.guide)
            rows, cols = slice(window[0], window[0] + size), slice(window[1], window[1] + size)
            guide, target, bg = guide[..., rows, cols], target[..., rows, cols], bg[..., rows, cols]
        rgb, alpha = self.generator(guide, batch.params, window)
        weight = region_weights(guide, self.config.losses)
        loss, parts = reconstruction_loss(rgb, target, weight, self.config.losses, perceptual=self.perceptual)
        comp = alpha * rgb.detach() + (1 - alpha) * bg
        alpha_loss = self.config.alpha_weight * weighted_l1(comp, target, weight)
        parts["alpha"] = float(alpha_loss.detach())
        return loss + alpha_loss, parts, (batch, full_target, rgb)

    def _window(self, guide: torch.Tensor) -> tuple[tuple[int, int], int]:
        """A training patch ``(top, left), size``: on the mouth half the time, anywhere otherwise."""
        res, stride = guide.shape[-1], self.generator.config.stride
        size = max(stride, int(round(res * self.config.patch / (2 * stride))) * 2 * stride)
        size = min(size, res)
        span = res - size
        lips = guide[0, 3 + MASK_NAMES.index("lips")]
        if self.rng.random() < self.config.mouth_patch and bool(lips.any()):
            ys, xs = torch.nonzero(lips > 0.5, as_tuple=True)
            centre = (float(ys.float().mean()), float(xs.float().mean()))
            jitter = self.rng.uniform(-0.25, 0.25, 2) * size
            top, left = (int(round(c - size / 2 + j)) for c, j in zip(centre, jitter, strict=True))
        else:
            top, left = (int(v) for v in self.rng.integers(0, span + 1, 2))
        top = min(max(top, 0), span) // stride * stride
        left = min(max(left, 0), span) // stride * stride
        return (top, left), size

    def _segmenter_step(self, image: torch.Tensor, guide: torch.Tensor) -> float:
        self.segmenter.train().requires_grad_(True)
        loss = self.segmenter.loss(image, guide)
        self.seg_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.seg_optimizer.step()
        return float(loss.detach())

    def train_step(self) -> dict[str, float]:
        c = self.config
        self._set_lr()
        self.generator.train()
        pairs = max(c.batch_size // 2, 1)
        stage2 = self.step >= c.stage1_steps
        parts: dict[str, float] = {}
        if not stage2:
            loss, parts, (batch, target, _) = self._real_loss(pairs)
            self.preview_cache = None
        else:
            aux_pairs = max(int(round(pairs * c.aux_share)), 1)
            real_pairs = max(pairs - aux_pairs, 1)
            loss, parts, _ = self._real_loss(real_pairs)
            abatch, atarget, aweight = self._aux_batch(aux_pairs)
            argb, _ = self.generator(abatch.guide, abatch.params)
            lc = c.losses
            pseudo = (
                lc.l1 * weighted_l1(argb, atarget, aweight)
                + lc.ssim * ssim_loss(argb, atarget, aweight)
                + lc.velocity * velocity_loss(argb, atarget, aweight)
            )
            loss = loss + c.pseudo_weight * pseudo
            parts["pseudo"] = float(pseudo.detach())
            if self.segmenter_trained:
                self.segmenter.eval().requires_grad_(False)
                geo = self.segmenter.loss(argb, abatch.guide)
                loss = loss + c.geometry_weight * geo
                parts["geo"] = float(geo.detach())
            self.preview_cache = (abatch, atarget, aweight, argb.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if not stage2:
            parts["seg"] = self._segmenter_step(target, batch.guide)
            self.segmenter_trained = True
        parts["loss"] = float(loss.detach())
        self.step += 1
        return parts

    # ------------------------------------------------------------------- run
    def run(self, resume: bool = False) -> list[dict[str, float]]:
        """Train up to ``config.total_steps``.

        Checkpoints, previews and the loss plot go to the work folder (when there is one).
        """
        c = self.config
        if resume and self.resume() and not self.quiet:
            tqdm.write(f"resuming from step {self.step}")
        total = c.total_steps
        bar = tqdm(total=total, initial=self.step, desc="training", unit="step", disable=self.quiet)
        try:
            while self.step < total:
                parts = self.train_step()
                self.history.append({"step": self.step, **{k: round(v, 5) for k, v in parts.items()}})
                stage = 1 if self.step <= c.stage1_steps else 2
                bar.set_postfix(stage=stage, loss=f"{parts['loss']:.4f}", refresh=False)
                bar.update(1)
                if self.work_dir is not None:
                    if self.step % c.preview_every == 0 or self.step == total:
                        self.write_preview(self.work_dir / "previews" / f"step{self.step:06d}.png")
                    if self.step % c.checkpoint_every == 0 or self.step == total:
                        self.save()
        finally:
            bar.close()
        if self.work_dir is not None and self.history:
            plot_losses(self.history, self.work_dir / "loss.png", c.stage1_steps)
        return self.history

    # -------------------------------------------------------------- previews
    @torch.no_grad()
    def preview_image(self) -> np.ndarray:
        """Rows of ``ground truth | generated RGB | guide | alpha`` for a few training frames.

        In stage 2 a last row shows an auxiliary frame: ``pseudo target (masked) | generated | guide``.
        """
        self.generator.eval()
        idx = self.preview_index
        batch = self.conditioner.frames(self.data.params, idx, self.data.boxes[idx], self.device)
        target = self.data.images(idx, self.device)
        rgb, alpha = self.generator(batch.guide, batch.params)
        rows = [
            torch.cat([target[i], rgb[i], guide_picture(batch.guide[i]), alpha[i].expand(3, -1, -1)], 2)
            for i in range(len(idx))
        ]
        cache = getattr(self, "preview_cache", None)
        if cache is not None:
            abatch, atarget, aweight, argb = cache
            dark = torch.zeros_like(argb[0])
            rows.append(
                torch.cat([atarget[0] * aweight[0], argb[0], guide_picture(abatch.guide[0]), dark], 2)
            )
        self.generator.train()
        image = torch.cat(rows, 1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return (image * 255 + 0.5).astype(np.uint8)

    def write_preview(self, path: Path) -> None:
        from talkinghead.media import write_png

        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(path, self.preview_image())


def _pair(a: np.ndarray) -> np.ndarray:
    """Exactly two rows (a one-frame slice repeats its frame)."""
    return a[:2] if len(a) >= 2 else np.repeat(a[:1], 2, 0)


_MASK_COLOURS = {"face": (0.35, 0.35, 0.35), "lips": (0.9, 0.1, 0.1), "mouth_inner": (0.1, 0.9, 0.1),
                 "eyes": (0.1, 0.3, 1.0), "irises": (1.0, 1.0, 0.1), "brows": (0.9, 0.1, 0.9)}  # fmt: skip


def guide_picture(guide: torch.Tensor) -> torch.Tensor:
    """A ``[3,H,W]`` picture of a guide: region masks in colour over the head-plane grid."""
    h = guide[-2:]
    grid = ((torch.sin(h * 20 * math.pi) > 0.9).any(0)).float() * 0.15
    out = grid.expand(3, -1, -1).clone()
    for name, colour in _MASK_COLOURS.items():
        m = guide[3 + MASK_NAMES.index(name)] > 0.5
        out[:, m] = torch.tensor(colour, device=guide.device)[:, None]
    return out


def plot_losses(history: list[dict[str, float]], path: Path, stage1_steps: int) -> None:
    """Loss curves (log scale, smoothed) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from talkinghead.atomic import atomic_path

    steps = np.array([h["step"] for h in history])
    keys = sorted({k for h in history for k in h if k != "step"})
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key in keys:
        vals = np.array([h.get(key, np.nan) for h in history], float)
        ok = np.isfinite(vals)
        if ok.sum() < 2:
            continue
        k = max(1, min(50, ok.sum() // 20))
        smooth = np.convolve(vals[ok], np.ones(k) / k, mode="valid")
        ax.plot(steps[ok][k - 1 :], smooth, label=key, lw=2 if key == "loss" else 1)
    if 0 < stage1_steps < steps.max():
        ax.axvline(stage1_steps, color="k", ls="--", lw=0.8)
        ax.text(stage1_steps, ax.get_ylim()[1], " stage 2", va="top", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
