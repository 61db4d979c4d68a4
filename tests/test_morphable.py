import numpy as np
import torch

from talkinghead.morphable.alignment import mirror_indices
from talkinghead.morphable.model import MODEL_ID, N_POINTS, MorphableModel
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.morphable.rotation import axis_angle_to_matrix, matrix_to_axis_angle


def test_all_52_arkit_blendshapes_move_something():
    model = MorphableModel.default()
    assert model.names == ARKIT_NAMES and model.basis.shape == (52, N_POINTS, 3)
    peak = model.basis.norm(dim=-1).amax(-1)
    assert (peak > 0.03).all(), [n for n, p in zip(model.names, peak, strict=True) if p <= 0.03]


def _moved(model, name, region):
    d = model.basis[model.index(name)].norm(dim=-1)
    return d[model.regions[region]].mean().item(), d.mean().item()


def test_blendshapes_act_on_their_semantic_region():
    model = MorphableModel.default()
    for name, region in [("jawOpen", "lips"), ("eyeBlinkLeft", "left_eye"), ("eyeBlinkRight", "right_eye"),
                         ("browInnerUp", "left_brow"), ("eyeLookInLeft", "left_iris"), ("mouthSmileLeft", "lips")]:
        local, overall = _moved(model, name, region)
        assert local > 2 * overall, name
    # a blink closes the eye: upper lid (159) reaches the lower lid (145)
    shut = model.shape(torch.eye(52)[model.index("eyeBlinkRight")])
    gap_open = (model.neutral[145, 1] - model.neutral[159, 1]).item()
    gap_shut = (shut[145, 1] - shut[159, 1]).item()
    assert gap_shut < 0.15 * gap_open
    # jawOpen opens the mouth downwards; smile lifts the subject's left corner (image right, +x)
    opened = model.shape(torch.eye(52)[model.index("jawOpen")])
    assert opened[14, 1] - opened[13, 1] > 0.25
    smile = model.basis[model.index("mouthSmileLeft"), 291]
    assert smile[1] < -0.05 and smile[0] > 0.03


def test_left_and_right_shapes_mirror_each_other():
    model = MorphableModel.default()
    pairs = mirror_indices(model.neutral.numpy())
    for left in [n for n in model.names if n.endswith("Left")]:
        a = model.basis[model.index(left)].numpy()
        b = model.basis[model.index(left[:-4] + "Right")].numpy()[pairs] * np.array([-1, 1, 1])
        assert np.abs(a - b).max() < 1e-3, left


def test_projection_scale_rotation_translation():
    model = MorphableModel.default()
    e = torch.zeros(2, 52)
    rot = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.3, 0.0]])
    v = model.vertices(e, rot, torch.tensor([[100.0, 50.0, 0.0]] * 2), torch.tensor([10.0, 10.0]))
    assert torch.allclose(v[0], model.neutral * 10 + torch.tensor([100.0, 50.0, 0.0]), atol=1e-4)
    assert not torch.allclose(v[1], v[0])
    assert model.model_id == MODEL_ID


def test_axis_angle_round_trip():
    v = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [1.0, 0.5, -0.7]])
    assert torch.allclose(matrix_to_axis_angle(axis_angle_to_matrix(v)), v, atol=1e-5)


def test_model_state_round_trip():
    model = MorphableModel.default()
    again = MorphableModel.from_state_dict(model.state_dict())
    e = torch.rand(3, 52)
    assert torch.allclose(model.shape(e), again.shape(e))


def test_sheet_is_written(tmp_path):
    from talkinghead.morphable.sheet import draw_sheet

    out = tmp_path / "sheet.png"
    draw_sheet(MorphableModel.default(), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
