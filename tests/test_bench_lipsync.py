"""The lip-sync bench's K-fold scoring and its ``--set`` overrides (the numbers in README come from them)."""

from __future__ import annotations

import numpy as np
import pytest
from _synthetic import expressions_for, synth_speech

from bench.lipsync import parse_overrides, score_folds
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence

FPS = 25.0


def test_overrides_change_only_the_named_fields() -> None:
    cfg = parse_overrides(["hidden=32", "dropout=0.2", "silence_span_s=(0.2, 1.0)"])
    assert (cfg.hidden, cfg.dropout, cfg.silence_span_s) == (32, 0.2, (0.2, 1.0))
    assert cfg.steps == parse_overrides(["hidden=64"]).steps  # untouched fields keep their defaults
    assert parse_overrides([]) is None


@pytest.mark.parametrize("item", ["hiden=32", "hidden", "hidden=many"])
def test_bad_overrides_exit_with_the_field_list(item: str) -> None:
    with pytest.raises(SystemExit, match="hidden"):
        parse_overrides([item])


def test_k_fold_scores_every_block_on_speech_it_did_not_train_on() -> None:
    audio, env = synth_speech(12.0, seed=3)
    expr = expressions_for(env)
    n = len(expr)
    seq = ParamSequence(
        fps=FPS, model_id="test", coefficient_names=ARKIT_NAMES, expression=expr,
        rotation=np.zeros((n, 3)), translation=np.zeros((n, 3)), scale=np.ones(n), valid=np.ones(n, bool),
    )  # fmt: skip
    folds = score_folds(seq, audio, 3, config=parse_overrides(["steps=150", "hidden=32"]))
    assert folds["k"] == 3 and len(folds["jawOpen"]) == 3 and len(folds["aperture"]) == 3
    # the jaw follows the loudness of the syllables here, so a model that never heard a block still tracks it;
    # predictions scored against the wrong block (an off-by-one in the split) would not
    assert min(folds["jawOpen"]) > 0.6, folds
