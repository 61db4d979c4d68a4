"""Keyframe files: parsing, interpolation, blinks, the shipped example, and one clear error per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from talkinghead.errors import TalkingHeadError
from talkinghead.keyframes import keyframes_to_params, parse_keyframes, pose_to_rotation, sample_keyframes
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "keyframes.yaml"
J = ARKIT_NAMES.index("jawOpen")
SMILE = ARKIT_NAMES.index("mouthSmileLeft")
BLINK_L, BLINK_R = ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")


def _params(source, blinks_seed: int = 0) -> ParamSequence:
    return keyframes_to_params(
        source, "test-model", ARKIT_NAMES, (256, 256), np.array([128.0, 120.0, 0.0]), 90.0,
        np.random.default_rng(blinks_seed),
    )  # fmt: skip


def _script(keys: list[dict], **top) -> dict:
    return {"fps": 10, "blinks": "none", **top, "keys": keys}


def test_example_file_makes_a_full_performance() -> None:
    seq = _params(EXAMPLE)
    assert seq.fps == 25 and len(seq) == 125 and seq.model_id == "test-model"
    assert seq.coefficient_names == ARKIT_NAMES and seq.valid.all()
    assert seq.expression.min() >= 0 and seq.expression.max() <= 1
    t = lambda s: int(round(s * 25))  # noqa: E731
    assert seq.expression[t(0.6), SMILE] == pytest.approx(0.7)
    assert seq.expression[t(2.5), ARKIT_NAMES.index("browInnerUp")] == pytest.approx(0.9, abs=0.02)
    assert seq.expression[t(4.4), BLINK_L] == pytest.approx(1.0)  # the wink, held by its step easing
    yaw = np.degrees(Rotation.from_rotvec(seq.rotation).as_euler("YXZ"))[:, 0]
    assert yaw[t(3.6)] == pytest.approx(20, abs=0.01) and abs(yaw[0]) < 1e-4
    assert np.allclose(seq.translation, [128, 120, 0]) and np.allclose(seq.scale, 90)
    assert seq.metadata["driver"] == "keyframes"


def test_interpolation_easing_and_holding() -> None:
    script = _script(
        [
            {"time": 0, "expression": {"jawOpen": 0.0, "mouthSmileLeft": 0.4}, "easing": "linear"},
            {"time": 1, "expression": {"jawOpen": 1.0}, "pose": {"yaw": 10}, "easing": "step"},
            {"time": 2, "expression": {"jawOpen": 0.2}},
        ],
        duration=3.0,
    )
    expr, pose = sample_keyframes(parse_keyframes(script, ARKIT_NAMES), ARKIT_NAMES)
    assert expr.shape == (30, 52) and pose.shape == (30, 3)
    assert expr[5, J] == pytest.approx(0.5)  # linear half way
    assert np.allclose(expr[10:20, J], 1.0)  # step: hold until the next key
    assert expr[20, J] == pytest.approx(0.2) and np.allclose(expr[20:, J], 0.2)  # after the last key: hold
    assert np.allclose(expr[:, SMILE], 0.4)  # never mentioned again: carried forward
    assert pose[5, 1] == pytest.approx(5.0) and np.allclose(pose[10:, 1], 10)
    ease = _script([{"time": 0, "expression": {"jawOpen": 0}}, {"time": 1, "expression": {"jawOpen": 1}}])
    expr, _ = sample_keyframes(parse_keyframes(ease, ARKIT_NAMES), ARKIT_NAMES)
    assert expr[2, J] < 0.2 and expr[5, J] == pytest.approx(0.5)  # ease_in_out: slow start, mid at half


def test_first_key_later_than_zero_and_json_files(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps(_script([{"time": 0.5, "expression": {"jawOpen": 0.3}}], duration=1.0)))
    seq = _params(path)
    assert len(seq) == 10 and np.allclose(seq.coefficient(ARKIT_NAMES[J]), 0.3)


def test_auto_blinks_are_added_but_a_wink_wins() -> None:
    keys = [{"time": 0}, {"time": 30, "expression": {}}]
    seq = _params({"fps": 25, "blinks": "auto", "keys": keys})
    blinks = seq.coefficient("eyeBlinkRight")
    closed = np.flatnonzero((blinks[1:] > 0.5) & (blinks[:-1] <= 0.5))
    assert 4 <= len(closed) <= 16  # ~17 a minute
    assert np.array_equal(seq.expression[:, BLINK_L], blinks)
    none = _params({"fps": 25, "blinks": "none", "keys": keys})
    assert none.coefficient("eyeBlinkRight").max() == 0
    wink = _params({"fps": 25, "keys": [{"time": 0, "expression": {"eyeBlinkLeft": 1.0}}, {"time": 10}]})
    assert np.all(wink.coefficient("eyeBlinkLeft") == 1.0) and wink.coefficient("eyeBlinkRight").max() > 0.5


def test_pose_angles_follow_the_documented_axes() -> None:
    rot = Rotation.from_rotvec(pose_to_rotation(np.array([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])))
    nose = np.array([0.0, 0.0, -1.0])  # model space: x right, y down, z away from the camera
    assert rot[0].apply(nose)[1] > 0.1  # pitch > 0: chin (and nose) down
    assert rot[1].apply(nose)[0] < -0.1  # yaw > 0: face turns toward image left
    assert rot[2].apply([0.0, -1.0, 0.0])[0] > 0.1  # roll > 0: top of the head tips right (clockwise)
    base = np.array([0.0, 0.2, 0.0])
    assert np.allclose(pose_to_rotation(np.zeros((1, 3)), base)[0], base)


GOOD_KEY = {"time": 0, "expression": {"jawOpen": 0.1}}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"keys": []}, "'keys' is missing or empty"),
        ({"fps": 25}, "'keys' is missing or empty"),
        ({"keys": {"time": 0}}, "'keys' must be a list"),
        ({"keys": [GOOD_KEY], "speed": 2}, "unknown field.*speed"),
        ({"keys": [{"time": 1}, {"time": 0.5}]}, "key 1: time 0.5 s is not after key 0"),
        ({"keys": [{"time": 1}, {"time": 1}]}, "key 1: time 1 s is not after key 0"),
        ({"keys": [{"time": -0.5}]}, "key 0: time must not be negative"),
        ({"keys": [{"expression": {"jawOpen": 0.1}}]}, "key 0: 'time' is missing"),
        ({"keys": [{"time": "soon"}]}, "key 0: time must be a number, got 'soon'"),
        ({"keys": [{"time": True}]}, "key 0: time must be a number"),
        (
            {"keys": [GOOD_KEY, {"time": 1, "expression": {"jawopen": 0.5}}]},
            r"key 1: expression: unknown coefficient 'jawopen' \(did you mean 'jawOpen'\?\); valid names: b",
        ),
        (
            {"keys": [{"time": 0, "expression": {"smile": 0.5}}]},
            "unknown coefficient 'smile'.*mouthSmileLeft",
        ),
        (
            {"keys": [{"time": 0, "expression": {"jawOpen": 1.5}}]},
            r"key 0: expression jawOpen = 1.5 is outside \[0, 1\]",
        ),
        ({"keys": [{"time": 0, "expression": {"jawOpen": -0.1}}]}, "outside"),
        (
            {"keys": [{"time": 0, "expression": {"jawOpen": "wide"}}]},
            "key 0: expression jawOpen must be a number",
        ),
        ({"keys": [{"time": 0, "expression": [0.5]}]}, "key 0: expression must be a mapping"),
        ({"keys": [{"time": 0, "pose": {"yaw": 75}}]}, "key 0: pose yaw = 75 degrees is outside"),
        ({"keys": [{"time": 0, "pose": {"pitch": -61}}]}, "pose pitch = -61"),
        ({"keys": [{"time": 0, "pose": {"tilt": 5}}]}, "key 0: pose: unknown angle 'tilt'"),
        ({"keys": [{"time": 0, "pose": 5}]}, "key 0: pose must be a mapping"),
        ({"keys": [{"time": 0, "easing": "bounce"}]}, "key 0: easing 'bounce' is unknown"),
        ({"keys": [{"time": 0, "colour": "red"}]}, "key 0: unknown field.*colour"),
        ({"keys": ["jawOpen"]}, "key 0 must be a mapping"),
        ({"keys": [GOOD_KEY], "fps": 0}, "fps must be in"),
        ({"keys": [GOOD_KEY], "fps": "fast"}, "fps must be a number"),
        ({"keys": [GOOD_KEY, {"time": 3}], "duration": 2}, "duration 2 s ends before the last key"),
        ({"keys": [GOOD_KEY], "duration": -1}, "duration must be positive"),
        ({"keys": [GOOD_KEY], "blinks": "sometimes"}, "blinks must be 'auto' or 'none'"),
    ],
)
def test_every_mistake_gets_one_clear_line(data, message: str) -> None:
    with pytest.raises(TalkingHeadError, match=message) as info:
        _params(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.yaml", "keys:\n  - time: 0\n    expression: {jawOpen: 0.2\n", "is not valid YAML: .* at line"),
        ("bad.yaml", "keys: [\n", "is not valid YAML"),
        ("bad.json", '{"keys": [{"time": 0,}]}', "is not valid JSON: .* line 1"),
        ("empty.yaml", "", "is empty"),
        ("list.yaml", "- time: 0\n", "must be a mapping with a 'keys' list"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TalkingHeadError, match=message):
        _params(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="keyframe file .*nope.yaml does not exist"):
        _params(tmp_path / "nope.yaml")


def test_yaml_off_means_no_blinks(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("fps: 10\nblinks: off\nkeys:\n  - time: 0\n  - time: 5\n")
    assert _params(path).coefficient("eyeBlinkLeft").max() == 0
