"""Resumable training checkpoints: safetensors for every tensor, JSON for everything else, no pickle.

A checkpoint is ``ckpt-<step>.safetensors`` (module weights, optimizer moments, torch RNG state) plus
``checkpoint.json`` naming it. Both are written atomically, the JSON last, and older tensor files are
removed only after the JSON points at the new one: killed at any moment, the folder holds one
complete checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from talkinghead.atomic import atomic_path
from talkinghead.errors import TalkingHeadError

INDEX = "checkpoint.json"
FORMAT = "talkinghead.checkpoint"
VERSION = 1


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict:
    """Moments go to ``tensors``; the JSON-able rest (hyper-parameters, scalar steps) is returned."""
    state = opt.state_dict()
    meta: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        scalars = {}
        for key, value in entry.items():
            if torch.is_tensor(value) and key != "step":
                tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[key] = float(value) if torch.is_tensor(value) else value
        meta["state"][str(idx)] = scalars
    return meta


def _restore_optimizer(
    name: str, opt: torch.optim.Optimizer, meta: dict, tensors: dict[str, torch.Tensor]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for idx, scalars in meta["state"].items():
        entry: dict[str, Any] = {k: torch.tensor(v, dtype=torch.float32) for k, v in scalars.items()}
        prefix = f"optim.{name}.{idx}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                entry[key[len(prefix) :]] = value
        state[int(idx)] = entry
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    directory: str | Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict[str, Any],
) -> Path:
    """Write a complete checkpoint for ``step``; ``extra`` must be JSON-serialisable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous()
    opt_meta = {name: _flatten_optimizer(name, opt, tensors) for name, opt in optimizers.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    weights = directory / f"ckpt-{step:08d}.safetensors"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    index = {"format": FORMAT, "version": VERSION, "step": step, "weights": weights.name,
             "optimizers": opt_meta, "extra": extra}  # fmt: skip
    with atomic_path(directory / INDEX) as tmp:
        tmp.write_text(json.dumps(index))
    for old in directory.glob("ckpt-*.safetensors"):
        if old.name != weights.name:
            old.unlink(missing_ok=True)
    return weights


def has_checkpoint(directory: str | Path) -> bool:
    return (Path(directory) / INDEX).is_file()


def load_checkpoint(
    directory: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[int, dict[str, Any]]:
    """Restore modules, optimizers and the torch RNG in place; return ``(step, extra)``."""
    directory = Path(directory)
    try:
        index = json.loads((directory / INDEX).read_text())
        if index.get("format") != FORMAT or index.get("version") != VERSION:
            raise TalkingHeadError(f"{directory / INDEX} is not a checkpoint this talkinghead can resume")
        tensors = load_file(str(directory / index["weights"]))
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise TalkingHeadError(f"cannot resume from {directory}: {exc}".splitlines()[0]) from None
    try:
        for name, module in modules.items():
            prefix = f"module.{name}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, opt in optimizers.items():
            _restore_optimizer(name, opt, index["optimizers"][name], tensors)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise TalkingHeadError(
            f"the checkpoint in {directory} does not fit this training run (different settings?): {first}"
        ) from None
    torch.set_rng_state(tensors["rng.torch"])
    return int(index["step"]), index.get("extra", {})
