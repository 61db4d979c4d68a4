"""The avatar bundle: everything needed to render one person, in one folder, loaded without pickle.

Layout (``FORMAT_NAME`` version ``FORMAT_VERSION``)::

    config.json            format, version, model id and coefficient names, resolution, crop, fps, frame size,
                           background and replay descriptions, training record
    generator/             config.json + model.safetensors (the personalized generator)
    segmenter/             config.json + model.safetensors (stage 2's mask head; offline mode reuses it)
    morphable.safetensors  the subject's model: neutral, blendshape basis, pose correctives
    training_params.npz    the tracked parameters of the whole source video (+ crop boxes in its metadata)
    motion.json            the subject's head-motion and blink statistics (speech drivers read them)
    background.mp4         the source video's first seconds played forward then backward (a seamless loop)
    replay.mp4             training crops replayed during offline fine-tuning
    audio/                 optional: the audio-to-expression model (written by ``add_component``)

Rendering: parameters -> crop boxes -> guides -> generator (batched) -> composite into background
frames -> H.264. Offline mode first fine-tunes a copy of the generator on the driving parameters
(stage 2 with those parameters as the auxiliary data, real frames replayed).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from talkinghead import __version__
from talkinghead.errors import TalkingHeadError
from talkinghead.generator.conditioning import Conditioner
from talkinghead.generator.network import Generator
from talkinghead.params import ParamSequence
from talkinghead.training.crop import CropConfig, paste_crop, scale_boxes
from talkinghead.training.segmenter import Segmenter

FORMAT_NAME = "talkinghead.avatar"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AvatarConfig:
    # the background loop: 20 s forward + backward is long enough that the loop is not noticed
    background_max_s: float = 20.0
    # larger sources are stored downscaled: the generated crop is at most 512 px anyway
    background_max_side: int = 1280
    # crops kept for offline fine-tuning's replay: ~12 s at 25 fps covers the mouth and pose variety
    replay_frames: int = 300
    render_batch: int = 8  # frames per generator call: amortises Python overhead, bounded memory
    finetune_steps: int = 300  # offline mode default: about a minute at 128 px on a laptop CPU
    # offline fine-tuning: gentler than training, it adapts rather than relearns
    finetune_lr_factor: float = 0.5


AVATAR = AvatarConfig()


# ---------------------------------------------------------------------------------------------- helpers
def _replace_dir(tmp: Path, target: Path) -> None:
    """Put the finished folder ``tmp`` at ``target``, replacing any previous one (never half of each)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _disk_error(exc: OSError, what: Path) -> TalkingHeadError:
    if exc.errno == 28:
        return TalkingHeadError(f"disk full while saving {what}; nothing was written")
    return TalkingHeadError(f"cannot save {what}: {exc.strerror or exc}")


class BackgroundLoop:
    """Frames of ``background.mp4`` (already ping-pong), looping, picked by time for any output fps."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._iter: Iterator[np.ndarray] | None = None
        self._pos = -1  # index in the file of ``_frame``
        self._frame: np.ndarray | None = None
        self.length: int | None = None  # known after the first pass

    def at_time(self, seconds: float) -> np.ndarray:
        """The frame shown at ``seconds`` (calls in increasing time, as when writing a video)."""
        from talkinghead.media import iter_frames

        target = int(round(seconds * self.fps))
        if self.length is not None:
            target %= self.length
        if target < self._pos:
            self._iter, self._pos = None, -1
        while self._pos < target:
            if self._iter is None:
                self._iter = iter_frames(self.path)
            try:
                self._frame = next(self._iter)
                self._pos += 1
            except StopIteration:
                self.length = self._pos + 1
                target %= self.length
                self._iter, self._pos = None, -1
        return self._frame

    def frames(self, n: int, out_fps: float) -> Iterator[np.ndarray]:
        for i in range(n):
            yield self.at_time(i / out_fps)


def write_background(
    frames: Iterable[np.ndarray], path: Path, fps: float, scale: float, max_frames: int, quiet: bool = True
) -> int:
    """Write frames forward then backward (a loop with no jump), resized by ``scale``; returns frames used."""
    from talkinghead.media import VideoWriter

    encoded: list[bytes] = []
    size = None
    for frame in frames:
        if len(encoded) >= max_frames:
            break
        if scale != 1.0:
            h, w = frame.shape[:2]
            frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        size = (frame.shape[1], frame.shape[0])
        ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])  # compact in memory
        encoded.append(buf.tobytes())
    if not encoded:
        raise TalkingHeadError("no background frames to store")
    order = list(range(len(encoded))) + list(range(len(encoded) - 2, 0, -1))
    with VideoWriter(path, fps, size, quiet=quiet, total=len(order)) as writer:
        for i in order:
            img = cv2.imdecode(np.frombuffer(encoded[i], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            writer.write(np.ascontiguousarray(img))
    return len(encoded)


def write_replay(crops: np.ndarray, path: Path, fps: float) -> None:
    """Training crops as a near-lossless video (offline fine-tuning replays them)."""
    from talkinghead.media import CONFIG, VideoWriter

    config = type(CONFIG)(**{**CONFIG.__dict__, "crf": 12})
    with VideoWriter(path, fps, (crops.shape[2], crops.shape[1]), quiet=True, config=config) as writer:
        for crop in crops:
            writer.write(crop)


# ----------------------------------------------------------------------------------------------- avatar
class Avatar:
    """A trained personal avatar: render parameter sequences of any driver into video."""

    def __init__(
        self,
        info: dict[str, Any],
        model: Any,
        generator: Generator,
        training_params: ParamSequence,
        segmenter: Segmenter | None = None,
        motion: dict[str, Any] | None = None,
        files: dict[str, Path] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.info = info
        self.model = model
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.segmenter = segmenter
        self.training_params = training_params
        self.motion = motion
        self.files = dict(files or {})  # component name -> file or folder to copy into the bundle
        self.conditioner = Conditioner(model, self.resolution)
        self.directory: Path | None = None

    # ---------------------------------------------------------- properties
    @property
    def model_id(self) -> str:
        return self.info["model_id"]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.info["coefficient_names"])

    @property
    def resolution(self) -> int:
        return int(self.info["resolution"])

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.info["frame_size"])  # type: ignore[return-value]

    @property
    def crop_size(self) -> int:
        return int(self.info["crop"]["size"])

    @property
    def training_boxes(self) -> np.ndarray:
        return np.asarray(self.training_params.metadata["crop_boxes"], np.int64)

    def path(self, name: str) -> Path | None:
        """Where a bundled component (``"background"``, ``"replay"``, ``"audio"``...) lies, if present."""
        p = self.files.get(name)
        return p if p is not None and p.exists() else None

    # ------------------------------------------------------------------- I/O
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the bundle into a temporary folder beside ``directory``, then swap it in."""
        target = Path(directory)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise TalkingHeadError(f"cannot save the avatar: folder {parent} does not exist")
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        except OSError as exc:
            raise _disk_error(exc, target) from None
        try:
            self._write(tmp)
            _replace_dir(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _disk_error(exc, target) from None
        except TalkingHeadError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc.__cause__, OSError):
                raise _disk_error(exc.__cause__, target) from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.directory = target
        self.files = {name: target / Path(p).name for name, p in self.files.items()}
        return target

    def _write(self, tmp: Path) -> None:
        self.generator.save_pretrained(tmp / "generator")
        if self.segmenter is not None:
            self.segmenter.save_pretrained(tmp / "segmenter")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(tensors, str(tmp / "morphable.safetensors"))
        self.training_params.save(tmp / "training_params.npz")
        if self.motion is not None:
            (tmp / "motion.json").write_text(json.dumps(self.motion, indent=2))
        for src in self.files.values():
            src = Path(src)
            if not src.exists():
                continue
            dst = tmp / src.name
            if src.is_dir():
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)
        (tmp / "config.json").write_text(json.dumps(self.info, indent=2))  # last: marks a complete bundle

    @classmethod
    def load(cls, directory: str | os.PathLike, device: torch.device | str = "cpu") -> Avatar:
        """Read a bundle; a missing, foreign, corrupt or newer-format folder is a one-line error."""
        from talkinghead.morphable.model import MorphableModel

        directory = Path(directory)
        if not directory.is_dir():
            raise TalkingHeadError(f"avatar folder {directory} does not exist")
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise TalkingHeadError(f"{directory} is not an avatar (no config.json)")
        try:
            info = json.loads(config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TalkingHeadError(f"{config_path} is corrupt: {exc}") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
            raise TalkingHeadError(f"{directory} is not a talkinghead avatar")
        if info.get("version") != FORMAT_VERSION:
            raise TalkingHeadError(
                f"{directory} is avatar format version {info.get('version')}; "
                f"this talkinghead reads {FORMAT_VERSION}"
            )
        try:
            tensors = load_file(str(directory / "morphable.safetensors"))
            model = MorphableModel.from_state_dict(tensors, tuple(info["coefficient_names"]))
            if model.model_id != info["model_id"]:
                raise TalkingHeadError(
                    f"{directory} was made for morphable model {info['model_id']!r}, not {model.model_id!r}"
                )
            for key in ("resolution", "fps", "frame_size", "crop"):
                info[key]  # noqa: B018 (presence check)
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise TalkingHeadError(
                f"{directory} is an incomplete or corrupt avatar: {exc}".splitlines()[0]
            ) from None
        generator = Generator.from_pretrained(directory / "generator", device)
        segmenter = (
            Segmenter.from_pretrained(directory / "segmenter", device)
            if (directory / "segmenter").is_dir()
            else None
        )
        params = ParamSequence.load(directory / "training_params.npz")
        motion = None
        if (directory / "motion.json").is_file():
            try:
                motion = json.loads((directory / "motion.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise TalkingHeadError(f"{directory / 'motion.json'} is corrupt: {exc}") from None
        files = {
            p.stem: p for p in directory.iterdir() if p.name in ("background.mp4", "replay.mp4", "audio")
        }
        avatar = cls(info, model, generator, params, segmenter, motion, files, device)
        avatar.directory = directory
        return avatar

    @staticmethod
    def add_component(directory: str | os.PathLike, name: str, writer: Callable[[Path], Any]) -> Path:
        """Add or replace the sub-folder ``name`` of a saved avatar.

        ``writer(tmp_dir)`` fills a temporary folder, which then replaces ``name`` in one rename.
        """
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise TalkingHeadError(f"{directory} is not an avatar")
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=directory))
        try:
            writer(tmp)
            _replace_dir(tmp, directory / name)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _disk_error(exc, directory / name) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory / name

    # ------------------------------------------------------------- geometry
    def boxes_for(self, params: ParamSequence) -> np.ndarray:
        """Crop boxes (avatar frame pixels) for parameters in the avatar's own frame coordinates.

        A still-standing avatar keeps its one training box while the driven head stays near it;
        otherwise the box follows the head (smoothed) at the training box size.
        """
        from talkinghead.training.dataset import crop_boxes_for

        crop = self.info["crop"]
        boxes, _ = crop_boxes_for(params, self.model, CropConfig(), size=self.crop_size)
        boxes = self._clip_boxes(boxes)
        if crop.get("fixed"):
            fixed = np.asarray(crop["box"], np.int64)
            shift = np.abs(boxes[:, :2] - fixed[None, :2]).max()
            if shift <= CropConfig().fixed_motion * self.crop_size * 2:
                return np.repeat(fixed[None], len(params), 0)
        return boxes

    def _clip_boxes(self, boxes: np.ndarray) -> np.ndarray:
        w, h = self.frame_size
        out = boxes.copy()
        out[:, 0] = np.clip(out[:, 0], 0, max(w - out[:, 2].max(), 0))
        out[:, 1] = np.clip(out[:, 1], 0, max(h - out[:, 2].max(), 0))
        return out

    # ------------------------------------------------------------ rendering
    def check(self, params: ParamSequence) -> None:
        params.check_model(self.model_id, self.names)
        if len(params) == 0:
            raise TalkingHeadError("the parameter sequence has no frames")

    @torch.inference_mode()
    def generate(
        self,
        params: ParamSequence,
        boxes: np.ndarray,
        generator: Generator | None = None,
        batch: int | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rgb [r,r,3] float32 in [0,1], alpha [r,r])`` per frame, computed in batches."""
        gen = (generator or self.generator).eval()
        step = batch or AVATAR.render_batch
        for start in range(0, len(params), step):
            idx = np.arange(start, min(start + step, len(params)))
            inputs = self.conditioner.frames(params, idx, boxes[idx], self.device)
            rgb, alpha = gen(inputs.guide, inputs.params)
            rgb = rgb.permute(0, 2, 3, 1).float().cpu().numpy()
            alpha = alpha[:, 0].float().cpu().numpy()
            yield from zip(rgb, alpha, strict=True)

    def backgrounds(self) -> BackgroundLoop:
        path = self.path("background")
        if path is None:
            raise TalkingHeadError("this avatar has no background video (background.mp4 is missing)")
        return BackgroundLoop(path, self.fps)

    def render(
        self,
        params: ParamSequence,
        out_path: str | os.PathLike,
        audio: np.ndarray | None = None,
        audio_rate: int = 16000,
        quiet: bool = False,
        offline: bool = False,
        finetune_steps: int | None = None,
        background: Iterable[np.ndarray] | None = None,
        seed: int = 0,
    ) -> Path:
        """Render ``params`` to an mp4 (with ``audio`` if given).

        ``background`` overrides the looping training background (frames of the avatar's frame size,
        e.g. the real frames in self-reenactment). ``offline`` fine-tunes on ``params`` first.
        """
        from talkinghead.atomic import check_writable
        from talkinghead.media import VideoWriter

        self.check(params)
        check_writable(out_path)
        boxes = self.boxes_for(params)
        generator = self.finetuned(params, boxes, finetune_steps, quiet, seed) if offline else None
        if background is None:
            loop = self.backgrounds()
            background = loop.frames(len(params), params.fps)
            factor = float(self.info["background"]["scale"])
        else:
            factor = 1.0
        bg_iter = iter(background)
        first = next(bg_iter, None)
        if first is None:
            raise TalkingHeadError("the background has no frames")
        size = (first.shape[1], first.shape[0])
        placed = boxes if factor == 1.0 else scale_boxes(boxes, factor)
        frames = self.generate(params, boxes, generator)
        with VideoWriter(
            out_path, params.fps, size, audio, audio_rate, quiet=quiet, total=len(params)
        ) as writer:
            for i, (rgb, alpha) in enumerate(frames):
                bg = first if i == 0 else next(bg_iter, None)
                if bg is None:
                    raise TalkingHeadError(f"the background ran out after {i} frames")
                writer.write(paste_crop(bg, rgb, alpha, placed[i]))
        return Path(out_path)

    # ------------------------------------------------------------- offline
    def replay_data(self):
        """Training crops and their parameters, for replay while fine-tuning."""
        from talkinghead.media import read_frames
        from talkinghead.training.dataset import VideoData

        path = self.path("replay")
        if path is None:
            raise TalkingHeadError("this avatar has no replay.mp4, so it cannot fine-tune (offline mode)")
        idx = np.asarray(self.info["replay"]["frames"], np.int64)
        crops = read_frames(path, len(idx))
        if len(crops) != len(idx) or crops.shape[1] != self.resolution:
            raise TalkingHeadError(f"{path} does not match the avatar's replay record")
        seq = self.training_params
        sub = seq.with_arrays(
            expression=seq.expression[idx], rotation=seq.rotation[idx], translation=seq.translation[idx],
            scale=seq.scale[idx], valid=np.ones(len(idx), bool),
            gaze=None if seq.gaze is None else seq.gaze[idx],
        )  # fmt: skip
        return VideoData(sub, crops, self.training_boxes[idx])

    def finetuned(
        self, params: ParamSequence, boxes: np.ndarray, steps: int | None, quiet: bool, seed: int = 0
    ) -> Generator:
        """A copy of the generator fine-tuned with ``params`` as stage-2 auxiliary data (offline mode)."""
        from talkinghead.training.loop import AuxSource, TrainConfig, Trainer

        steps = AVATAR.finetune_steps if steps is None else int(steps)
        generator = copy.deepcopy(self.generator)
        if steps <= 0:
            return generator
        base = TrainConfig()
        config = TrainConfig(
            stage1_steps=0, stage2_steps=steps, lr=base.lr * AVATAR.finetune_lr_factor,
            grid_lr=base.grid_lr * AVATAR.finetune_lr_factor, preview_every=10**9, checkpoint_every=10**9,
        )  # fmt: skip
        segmenter = copy.deepcopy(self.segmenter) if self.segmenter is not None else None
        trainer = Trainer(
            self.replay_data(), self.conditioner, generator, segmenter, config, work_dir=None,
            device=self.device, seed=seed, quiet=quiet, aux_source=AuxSource(params, boxes),
            segmenter_trained=segmenter is not None,
        )  # fmt: skip
        trainer.run()
        return generator.eval()


def avatar_info(
    *,
    model: Any,
    resolution: int,
    fps: float,
    frame_size: tuple[int, int],
    crop_size: int,
    fixed_box: np.ndarray | None,
    background: dict[str, Any],
    replay_frames: list[int],
    training: dict[str, Any],
) -> dict[str, Any]:
    """The ``config.json`` record of a new avatar."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model_id": model.model_id,
        "coefficient_names": list(model.names),
        "resolution": int(resolution),
        "fps": float(fps),
        "frame_size": [int(frame_size[0]), int(frame_size[1])],
        "crop": {
            "size": int(crop_size),
            "fixed": fixed_box is not None,
            "box": None if fixed_box is None else [int(v) for v in fixed_box],
        },  # fmt: skip
        "background": background,
        "replay": {"file": "replay.mp4", "frames": [int(i) for i in replay_frames]},
        "training": training,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "talkinghead": __version__,
    }
