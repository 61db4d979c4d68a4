"""One way to write a network's folder: ``config.json`` beside ``model.safetensors``, each atomically.

Every network the toolkit saves (generator, segmenter, audio model) goes through here, so they share
the same durability (temporary file + rename) and the same error for a full or read-only disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from talkinghead.atomic import atomic_path, write_text_atomic
from talkinghead.errors import TalkingHeadError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_weights(
    module: nn.Module, directory: str | os.PathLike, config: dict[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``module``'s tensors and ``config`` into ``directory``; returns ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TalkingHeadError(f"cannot create {directory}: {exc.strerror or exc}") from None
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return directory
