"""Smoothing removes jitter without lagging real motion, and keeps a ParamSequence's structure."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence
from talkinghead.smoothing import DEFAULT_CONFIG, one_euro, savgol, smooth_params

FPS = 25.0
STEP_AT = 30


def _noisy_constant(t: int = 500, c: int = 3, std: float = 0.01, seed: int = 0) -> np.ndarray:
    return 0.4 + np.random.default_rng(seed).normal(0.0, std, (t, c))


def _step(height: float = 0.6, t: int = 60) -> np.ndarray:
    x = np.zeros((t, 2))
    x[STEP_AT:] = height
    return x


def _crossing(y: np.ndarray, height: float) -> int:
    """First frame at which the signal reaches half the step."""
    return int(np.argmax(y >= 0.5 * height))


def test_one_euro_removes_jitter() -> None:
    x = _noisy_constant()
    y = one_euro(x, FPS, min_cutoff=0.3, beta=0.0)
    assert y.shape == x.shape
    # Skip the first second (the filter starts at the first, noisy sample).
    assert x[25:].std(axis=0).min() / y[25:].std(axis=0).max() > 4.0
    assert np.allclose(y[25:].mean(axis=0), 0.4, atol=0.01)


def test_one_euro_is_causal() -> None:
    x = _noisy_constant(100)
    y = one_euro(x, FPS, 1.0, 2.0)
    x2 = x.copy()
    x2[60:] += 5.0  # changing the future must not change the past
    assert np.array_equal(one_euro(x2, FPS, 1.0, 2.0)[:60], y[:60])


def test_savgol_removes_jitter_with_zero_lag() -> None:
    x = _noisy_constant()
    y = savgol(x, FPS, window_s=1.0, order=2)
    assert x[25:-25].std(axis=0).min() / y[25:-25].std(axis=0).max() > 3.0
    for height in (0.2, 0.6, 1.0):
        step = _step(height)
        smoothed = savgol(step, FPS, window_s=0.3, order=2)
        lag = _crossing(smoothed[:, 0], height) - _crossing(step[:, 0], height)
        assert abs(lag) <= 1


def test_savgol_window_is_clipped_and_short_inputs_pass() -> None:
    x = _noisy_constant(6, 2)
    assert savgol(x, FPS, window_s=10.0).shape == (6, 2)  # window clipped to 5 frames
    assert np.array_equal(savgol(x[:2], FPS, window_s=1.0), x[:2])
    assert savgol(x[:, 0], FPS, 0.3).shape == (6,)


@pytest.mark.parametrize("height", [0.3, 0.6, 1.0])
def test_one_euro_mouth_defaults_lag_at_most_one_frame(height: float) -> None:
    mouth = DEFAULT_CONFIG.mouth.one_euro
    step = _step(height)
    smoothed = one_euro(step, FPS, mouth.min_cutoff, mouth.beta, mouth.d_cutoff)
    lag = _crossing(smoothed[:, 0], height) - _crossing(step[:, 0], height)
    assert 0 <= lag <= 1


def _sequence(t: int = 200, seed: int = 1, jitter: float = 0.01) -> ParamSequence:
    rng = np.random.default_rng(seed)
    k = len(ARKIT_NAMES)
    expression = np.clip(0.3 + rng.normal(0, jitter, (t, k)), 0, 1)
    valid = np.ones(t, bool)
    valid[50:55] = False
    return ParamSequence(
        fps=FPS, model_id="test", coefficient_names=ARKIT_NAMES, expression=expression,
        rotation=0.1 + rng.normal(0, jitter, (t, 3)), translation=256 + rng.normal(0, 1.0, (t, 3)),
        scale=200 + rng.normal(0, 1.0, t), valid=valid, frame_size=(512, 512),
        gaze=rng.normal(0, jitter, (t, 4)), metadata={"source": "synthetic"},
    )  # fmt: skip


@pytest.mark.parametrize("method", ["one_euro", "savgol", "none"])
def test_smooth_params_keeps_structure(method: str) -> None:
    seq = _sequence()
    out = smooth_params(seq, method=method)
    assert out is not seq
    assert out.coefficient_names == seq.coefficient_names and out.fps == seq.fps
    assert out.model_id == seq.model_id and out.frame_size == seq.frame_size
    for name in ("expression", "rotation", "translation", "scale", "gaze"):
        assert getattr(out, name).shape == getattr(seq, name).shape
        assert getattr(out, name).dtype == np.float32
    assert np.array_equal(out.valid, seq.valid)
    assert seq.metadata == {"source": "synthetic"}  # input untouched
    if method == "none":
        assert np.array_equal(out.expression, seq.expression)


@pytest.mark.parametrize("method", ["one_euro", "savgol"])
def test_smooth_params_reduces_pose_and_brow_jitter(method: str) -> None:
    seq = _sequence()
    out = smooth_params(seq, method=method, strength=2.0)
    brow = seq.coefficient_names.index("browInnerUp")
    for before, after in [
        (seq.rotation, out.rotation),
        (seq.translation, out.translation),
        (seq.scale, out.scale),
        (seq.expression[:, brow], out.expression[:, brow]),
    ]:
        assert np.std(before[25:], axis=0).min() / np.std(after[25:], axis=0).max() > 2.0
    # More strength smooths more.
    weak = smooth_params(seq, method=method, strength=0.5)
    assert np.std(weak.rotation[25:]) > np.std(out.rotation[25:])


@pytest.mark.parametrize("method", ["one_euro", "savgol"])
def test_blinks_survive_smoothing(method: str) -> None:
    seq = _sequence(jitter=0.0)
    blink = seq.coefficient_names.index("eyeBlinkLeft")
    expression = seq.expression.copy()
    expression[:, blink] = 0.0
    expression[100:103, blink] = 1.0  # a 120 ms blink
    out = smooth_params(seq.with_arrays(expression=expression), method=method)
    assert out.expression[100:103, blink].max() > 0.9


def test_smooth_params_rejects_bad_options() -> None:
    seq = _sequence(20)
    with pytest.raises(TalkingHeadError, match="unknown smoothing method"):
        smooth_params(seq, method="kalman")
    with pytest.raises(TalkingHeadError, match="strength"):
        smooth_params(seq, strength=-1.0)
    assert len(smooth_params(seq.slice(0, 1))) == 1
