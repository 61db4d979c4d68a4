"""Lip sync of the per-avatar audio model on held-out speech: train on the head of a clip, score its tail.

Run: ``python -m bench.lipsync [--clips a.mp4 ...] [--holdout 0.2] [--folds 5] [--set hidden=32 ...]
[--features wav2vec2 --wav2vec2 PATH]`` (writes ``bench/lipsync.md``).

For each clip the whole video is tracked and fitted once (cached under ``runs/bench/lipsync/``), the audio
model is trained on the first ``1 - holdout`` of it exactly as ``talkinghead train-audio`` does
(``talkinghead.audio.avatar_audio.train_on_prefix``), and its predictions for the unseen tail are
correlated with the coefficients fitted on the real frames. A trivial baseline puts the number in
context: the loudness envelope of the tail (frame RMS in dB), correlated with the same targets.

One tail of a short clip is few frames (40 for talk_woman_8s), so two more views make the number
trustworthy: ``--folds K`` holds out each of K contiguous blocks in turn (training on the rest) and
reports the mean and spread; and every clip's model also speaks every other clip's tail (another voice),
which is how ``talkinghead speak`` is mostly used. ``--set NAME=VALUE`` overrides an ``AudioTrainConfig``
field, so an ablation is one command.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CLIPS, DATA, RESULTS, machine, require_data

CACHE = Path(__file__).resolve().parents[1] / "runs" / "bench" / "lipsync"
SAMPLE_RATE = 16000


def clip_params(clip: str, quiet: bool = True):
    """The clip's fitted ParamSequence, tracked once and cached as ``runs/bench/lipsync/<clip>.npz``."""
    from talkinghead.params import ParamSequence
    from talkinghead.tracking.pipeline import track_video

    cached = CACHE / f"{Path(clip).stem}.npz"
    if cached.is_file():
        return ParamSequence.load(cached)
    if not quiet:
        print(f"tracking {clip} (once; cached in {cached})", file=sys.stderr)
    seq = track_video(DATA / clip, quiet=True).params
    CACHE.mkdir(parents=True, exist_ok=True)
    seq.save(cached)
    return seq


def loudness_baseline(audio: np.ndarray, sr: int, fps: float, target: np.ndarray, names) -> dict[str, float]:
    """Correlation of the frame loudness (RMS in dB) with the fitted jawOpen and mouth aperture."""
    from talkinghead.audio.features import _frame_db
    from talkinghead.audio.train import mouth_aperture, pearson

    level = _frame_db(np.asarray(audio, np.float32), sr, fps)
    n = min(len(level), len(target))
    level, target = level[:n], target[:n]
    return {
        "jawOpen": pearson(level, target[:, list(names).index("jawOpen")]),
        "aperture": pearson(level, mouth_aperture(target, tuple(names))),
    }


@dataclass
class Tail:
    """A clip's tail model and its held-out speech and targets, for the cross-speaker table."""

    clip: str
    model: Any  # AudioToExpression
    audio: np.ndarray
    target: np.ndarray
    fps: float
    names: tuple[str, ...]


def _score(model, audio: np.ndarray, target: np.ndarray, fps: float, names: tuple[str, ...]) -> dict[str, float]:
    """The model's predictions for ``audio`` against ``target`` (named ``names``): jawOpen and aperture r."""
    from talkinghead.audio.train import evaluate_jaw_correlation, predict

    pred = predict(model, audio, SAMPLE_RATE, fps=fps)
    return evaluate_jaw_correlation(pred, target, model.names, names)  # trims both to the shorter


def score_clip(clip: str, holdout: float = 0.2, quiet: bool = True, seed: int = 0, config=None,
               steps: int | None = None, folds: int = 0, features: str = "logmel",
               wav2vec2: str | None = None) -> tuple[dict[str, Any], Tail | None]:  # fmt: skip
    """Train on the head of ``clip``, score the tail; the baseline, the audio level and, with ``folds``,
    the K-fold scores. Also returns the tail model with its held-out data (None for a clip with no voice)."""
    from talkinghead import media
    from talkinghead.audio.avatar_audio import MIN_PITCHED_FRACTION, train_on_prefix
    from talkinghead.audio.features import pitched_fraction

    audio = media.extract_audio(DATA / clip, SAMPLE_RATE)
    if audio is None:
        raise SystemExit(f"{clip} has no audio track")
    pitched = pitched_fraction(audio, SAMPLE_RATE)
    if pitched < MIN_PITCHED_FRACTION:  # `talkinghead train` refuses it too: there is no voice to follow
        return {"clip": clip, "no_voice": True, "pitched_fraction": pitched, "level_dbfs": _level(audio)}, None
    seq = clip_params(clip, quiet)
    total = len(seq)
    n_train = total - int(round(total * holdout))
    started = time.perf_counter()
    model, metrics = train_on_prefix(seq, audio, SAMPLE_RATE, n_train, steps=steps, quiet=True, seed=seed,
                                     config=config, features=features, wav2vec2=wav2vec2)  # fmt: skip
    split = int(round(n_train / seq.fps * SAMPLE_RATE))
    target = seq.expression[n_train:]
    result = {
        "clip": clip, "frames": total, "train_frames": n_train, "fps": seq.fps,
        "holdout": metrics.get("holdout", {"jawOpen": math.nan, "aperture": math.nan}),
        "baseline": loudness_baseline(audio[split:], SAMPLE_RATE, seq.fps, target, seq.coefficient_names),
        "train_jaw_correlation": metrics["train_jaw_correlation"],
        "voiced_fraction": metrics["voiced_fraction"], "rest_source": metrics["rest_source"],
        "pitched_fraction": pitched, "level_dbfs": _level(audio), "seconds": time.perf_counter() - started,
        "folds": score_folds(seq, audio, folds, seed=seed, config=config, steps=steps, features=features,
                             wav2vec2=wav2vec2) if folds > 1 else None,  # fmt: skip
    }  # fmt: skip
    return result, Tail(clip, model, audio[split:], target, seq.fps, seq.coefficient_names)


def score_folds(seq, audio: np.ndarray, folds: int, *, seed: int = 0, config=None, steps: int | None = None,
                features: str = "logmel", wav2vec2: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Hold out each of ``folds`` contiguous blocks in turn, train on the rest, score the block.

    The two sides of a held-out block are joined end to end; frames within the model's context of the
    seam are masked out of the loss, so no training window pairs sound and mouth from either side of it.
    """
    from talkinghead.audio.model import AudioToExpressionConfig
    from talkinghead.audio.train import AudioTrainConfig, train_audio_model

    cfg = config or AudioTrainConfig()
    reach = AudioToExpressionConfig(fps=seq.fps, context_s=cfg.context_s).context_frames
    n, jaw, aperture = len(seq), [], []
    for k in range(folds):
        a, b = round(n * k / folds), round(n * (k + 1) / folds)
        sa, sb = round(a / seq.fps * SAMPLE_RATE), round(b / seq.fps * SAMPLE_RATE)
        valid = np.concatenate([seq.valid[:a], seq.valid[b:]])
        if 0 < a and b < n:  # the first and last blocks leave no seam
            valid[max(0, a - reach) : a + reach] = False
        model, _ = train_audio_model(
            np.concatenate([audio[:sa], audio[sb:]]), SAMPLE_RATE,
            np.concatenate([seq.expression[:a], seq.expression[b:]]), seq.coefficient_names, seq.fps,
            feature_kind=features, wav2vec2=wav2vec2, steps=steps, quiet=True, seed=seed, valid=valid,
            config=config,
        )  # fmt: skip
        scores = _score(model, audio[sa:sb], seq.expression[a:b], seq.fps, seq.coefficient_names)
        jaw.append(scores["jawOpen"])
        aperture.append(scores["aperture"])
    return {"k": folds, "jawOpen": jaw, "aperture": aperture}


def cross_speaker(tails: list[Tail]) -> list[dict[str, Any]]:
    """Each clip's tail model driven by every other clip's tail: lip sync with a voice it never heard."""
    return [
        {"model": Path(source.clip).stem, "speech": Path(other.clip).stem,
         **_score(source.model, other.audio, other.target, other.fps, other.names)}
        for source in tails for other in tails if other is not source
    ]  # fmt: skip


def parse_overrides(items: list[str]):
    """``["hidden=32", "dropout=0.2"]`` -> an ``AudioTrainConfig`` with those fields changed (None: none)."""
    import ast
    import dataclasses

    from talkinghead.audio.train import AudioTrainConfig

    if not items:
        return None
    fields = {f.name: f for f in dataclasses.fields(AudioTrainConfig)}
    base, changes = AudioTrainConfig(), {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--set wants NAME=VALUE with NAME one of: {', '.join(fields)}; got {item!r}")
        kind = type(getattr(base, name))
        try:
            changes[name] = kind(value) if kind in (int, float, str) else ast.literal_eval(value)  # tuples
        except (ValueError, SyntaxError) as exc:
            raise SystemExit(f"--set {item}: {exc}") from None
    return dataclasses.replace(base, **changes)


def _display(clip: str) -> str:
    """A clip as a reader can retype it: its name for the shared clips, else relative to the repository."""
    path = Path(clip)
    try:
        return str(path.relative_to(RESULTS.parent)) if path.is_absolute() else clip
    except ValueError:
        return clip


def _level(audio: np.ndarray) -> float:
    """Median frame level in dBFS: says how loud the soundtrack is, speech or not."""
    from talkinghead.audio.features import _frame_db

    return float(np.median(_frame_db(np.asarray(audio, np.float32), SAMPLE_RATE, 25.0)))


def _f(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _spread(values: list[float]) -> str:
    v = np.asarray(values, float)
    return "n/a" if not np.isfinite(v).any() else f"{np.nanmean(v):.2f} ± {np.nanstd(v):.2f}"


def _folds_table(results: dict[str, Any]) -> list[str]:
    scored = [r for r in results["clips"] if r.get("folds")]
    if not scored:
        return []
    k = scored[0]["folds"]["k"]
    return [
        f"**{k}-fold.** Each of {k} contiguous blocks held out in turn (the model trained on the rest); "
        "mean ± standard deviation over the folds, and every fold's jawOpen r.", "",
        "| clip | jawOpen r | aperture r | jawOpen r per fold |", "|---|---|---|---|",
        *(f"| {Path(r['clip']).stem} | {_spread(r['folds']['jawOpen'])} | {_spread(r['folds']['aperture'])} "
          f"| {', '.join(_f(x) for x in r['folds']['jawOpen'])} |" for r in scored), "",
    ]  # fmt: skip


def _cross_table(results: dict[str, Any]) -> list[str]:
    rows = results.get("cross") or []
    if not rows:
        return []
    return [
        "**Another voice.** Each clip's model (trained on its first "
        f"{100 * (1 - results['holdout']):.0f} %) driven by another clip's held-out speech, correlated with "
        "the mouth fitted on that clip: how `talkinghead speak` behaves with a voice the avatar never heard.", "",
        "| model trained on | speech from | jawOpen r | aperture r |", "|---|---|---|---|",
        *(f"| {r['model']} | {r['speech']} | {_f(r['jawOpen'])} | {_f(r['aperture'])} |" for r in rows), "",
    ]  # fmt: skip


def markdown(results: dict[str, Any], holdout: float, command: str) -> str:
    rows = [
        f"| {Path(r['clip']).stem} | no voice in the soundtrack (pitch in {100 * r['pitched_fraction']:.0f} % of "
        f"frames, median level {r['level_dbfs']:.0f} dBFS): not measurable | | | | | {100 * r['pitched_fraction']:.0f} % | |"
        if r.get("no_voice") else
        f"| {Path(r['clip']).stem} | {r['train_frames']} / {r['frames']} | {_f(r['holdout']['jawOpen'])} "
        f"| {_f(r['holdout']['aperture'])} | {_f(r['baseline']['jawOpen'])} | {_f(r['baseline']['aperture'])} "
        f"| {_f(r['train_jaw_correlation'])} | {100 * r['pitched_fraction']:.0f} % | {r['seconds']:.0f} |"
        for r in results["clips"]
    ]  # fmt: skip
    return "\n".join([
        "## Lip sync on held-out speech", "",
        f"Machine: {results['machine']}. Command: `{command}`.", "",
        f"The audio model ({'log-mel' if results.get('features', 'logmel') == 'logmel' else results['features']}, "
        f"`AudioTrainConfig` "
        f"{'with ' + ', '.join(results['overrides']) if results.get('overrides') else 'defaults'}, "
        f"seed {results['seed']}) is trained on the first "
        f"{100 * (1 - holdout):.0f} % of each clip, exactly as `talkinghead train-audio` trains it; the table gives "
        f"the Pearson correlation of its predictions for the last {100 * holdout:.0f} % with the coefficients "
        "fitted on the real frames. Baseline: the tail's loudness envelope (frame RMS in dB) correlated with "
        "the same targets. Aperture is jawOpen - mouthClose + lip raisers/lowerers (`mouth_aperture`). "
        "Pitched frames: share of 20 ms frames where pYIN hears a voice pitch; below "
        "10 % `talkinghead train` refuses to learn lip motion from the soundtrack.", "",
        "| clip | train / all frames | jawOpen corr | aperture corr | baseline jawOpen | baseline aperture "
        "| train-part jawOpen corr | pitched frames | seconds |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        *_folds_table(results), *_cross_table(results),
    ])  # fmt: skip


def run(clips=CLIPS, holdout: float = 0.2, quiet: bool = False, *, seed: int = 0, write: bool = True,
        config=None, folds: int = 5, overrides: tuple[str, ...] = (), features: str = "logmel",
        wav2vec2: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Score every clip; returns ``{"clips": [per-clip dict], "cross", "machine", "holdout", "seed", "markdown"}``.

    ``overrides`` (``"NAME=VALUE"``) change ``AudioTrainConfig`` fields unless ``config`` is given; ``folds``
    below 2 skips the K-fold scores. With ``write`` (default) the tables go to ``bench/lipsync.md``.
    """
    import torch

    require_data()
    torch.set_num_threads(1)
    if not 0 < holdout < 0.9:
        raise SystemExit(f"--holdout must be in (0, 0.9), got {holdout}")
    config = config or parse_overrides(list(overrides))
    out, tails = [], []
    for clip in clips:
        result, tail = score_clip(clip, holdout, quiet=quiet, seed=seed, config=config, folds=folds,
                                  features=features, wav2vec2=wav2vec2)  # fmt: skip
        out.append(result)
        tails += [tail] if tail is not None else []
        if not quiet:
            print(f"{clip}: no voice" if result.get("no_voice") else f"{clip}: holdout jawOpen {_f(result['holdout']['jawOpen'])}, aperture "
                  f"{_f(result['holdout']['aperture'])}; baseline {_f(result['baseline']['jawOpen'])}, "
                  f"{_f(result['baseline']['aperture'])}", file=sys.stderr)  # fmt: skip
    results = {"clips": out, "cross": cross_speaker(tails), "machine": machine(), "holdout": holdout, "seed": seed,
               "overrides": list(overrides), "features": features}  # fmt: skip
    command = (
        "python -m bench.lipsync"
        + ("" if tuple(clips) == CLIPS else " --clips " + " ".join(_display(c) for c in clips))
        + ("" if holdout == 0.2 else f" --holdout {holdout:g}")
        + ("" if folds == 5 else f" --folds {folds}")
        + "".join(f" --set {shlex.quote(o)}" for o in overrides)
        + (f" --features {features} --wav2vec2 {shlex.quote(str(wav2vec2))}" if features != "logmel" else "")
    )
    results["markdown"] = markdown(results, holdout, command)
    if write:
        (RESULTS / "lipsync.md").write_text(results["markdown"])
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lipsync", description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), help="file names in ../shared/data")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="fraction of each clip held out (its tail)"
    )
    parser.add_argument("--folds", type=int, default=5, help="K for the K-fold scores (below 2: skip them)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="change an AudioTrainConfig field, e.g. --set hidden=32 (repeatable)")  # fmt: skip
    parser.add_argument("--features", choices=("logmel", "wav2vec2"), default="logmel")
    parser.add_argument("--wav2vec2", help="wav2vec2 weights: a local folder or a model in the local cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.features == "wav2vec2" and not args.wav2vec2:
        parser.error("--features wav2vec2 needs --wav2vec2 PATH_OR_CACHED_NAME")
    results = run(tuple(args.clips), args.holdout, args.quiet, seed=args.seed, folds=args.folds,
                  overrides=tuple(args.overrides), features=args.features, wav2vec2=args.wav2vec2)  # fmt: skip
    print(results["markdown"])


if __name__ == "__main__":
    main()
