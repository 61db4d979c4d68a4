import json
import zipfile

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence


def make(frames=10, **kw):
    rng = np.random.default_rng(0)
    args = dict(
        fps=25.0, model_id="mediapipe478-arkit52/1", coefficient_names=ARKIT_NAMES,
        expression=rng.random((frames, 52)), rotation=rng.normal(0, 0.1, (frames, 3)),
        translation=rng.normal(200, 5, (frames, 3)), scale=np.full(frames, 100.0), valid=np.ones(frames, bool),
        gaze=np.zeros((frames, 4)), frame_size=(640, 480), metadata={"source": "test"},
    )
    args.update(kw)
    return ParamSequence(**args)


def test_round_trip(tmp_path):
    seq = make()
    seq.save(tmp_path / "p.npz")
    again = ParamSequence.load(tmp_path / "p.npz")
    assert again.coefficient_names == ARKIT_NAMES and again.fps == 25.0 and again.frame_size == (640, 480)
    assert np.allclose(again.expression, seq.expression) and again.metadata == {"source": "test"}
    assert again.gaze is not None and again.identity is None


def test_slice_and_coefficient():
    seq = make()
    part = seq.slice(2, 5)
    assert len(part) == 3 and np.allclose(part.coefficient("jawOpen"), seq.coefficient("jawOpen")[2:5])
    with pytest.raises(TalkingHeadError, match="unknown coefficient"):
        seq.coefficient("smile")


def test_shape_mismatch_is_refused():
    with pytest.raises(TalkingHeadError, match="rotation"):
        make(rotation=np.zeros((9, 3)))
    with pytest.raises(TalkingHeadError, match="NaN"):
        make(expression=np.full((10, 52), np.nan))


def _rewrite_header(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: p.write_text("not a zip"), "not a parameter file"),
        (lambda p: p.write_bytes(b""), "not a parameter file"),
        (lambda p: _rewrite_header(p, version=99), "version 99"),
        (lambda p: _rewrite_header(p, format="other"), "not a talkinghead parameter file"),
        (lambda p: np.savez(p, expression=np.zeros((2, 2))), "no header"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, corrupt, message):
    path = tmp_path / "p.npz"
    make().save(path)
    corrupt(path)
    with pytest.raises(TalkingHeadError, match=message):
        ParamSequence.load(path)


def test_missing_file():
    with pytest.raises(TalkingHeadError, match="does not exist"):
        ParamSequence.load("/nonexistent/p.npz")


def test_check_model_names_the_difference():
    seq = make()
    with pytest.raises(TalkingHeadError, match="model"):
        seq.check_model("flame/1", ARKIT_NAMES)
    with pytest.raises(TalkingHeadError, match="missing"):
        seq.check_model(seq.model_id, ARKIT_NAMES + ("extra",))


def test_save_is_atomic_no_temp_left(tmp_path):
    make().save(tmp_path / "p.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]
    assert zipfile.is_zipfile(tmp_path / "p.npz")
