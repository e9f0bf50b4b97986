"""Loading checkpoints safely: they travel through DVC remotes, so a tampered one must not run code.

Tensors and plain containers only (`weights_only=True`, no pickled objects),
and the objects a checkpoint asks to be built (`_target_` in its stored
config) must lie under an allowlist of module prefixes taken from the
loader's own config (`checkpoint.allowed_targets`), never from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from spira.errors import UserError
from spira.training.module import SpiraLitModule


class UntrustedCheckpointError(UserError, ValueError):
    """A checkpoint that asks to build an object outside the allowlist."""


def config_targets(node: Any) -> Iterator[str]:
    """Every `_target_` value in a nested config of dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield str(value)
            yield from config_targets(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from config_targets(value)


def read_checkpoint(path: str | Path, allowed_targets: Sequence[str]) -> dict:
    """The checkpoint's contents, tensors and plain data only, after checking its `_target_`s.

    Raises UntrustedCheckpointError naming the first target outside `allowed_targets`
    (prefixes such as "spira.models."); torch raises UnpicklingError for pickled objects."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for target in config_targets(checkpoint.get("hyper_parameters", {})):
        if not any(target.startswith(prefix) for prefix in allowed_targets):
            raise UntrustedCheckpointError(
                f"{path}: the checkpoint asks to build {target!r}, which is outside checkpoint.allowed_targets "
                f"{list(allowed_targets)}; refusing to load it. Add the prefix there only if you trust where it came from."
            )
    return checkpoint


def load_module(path: str | Path, allowed_targets: Sequence[str]) -> SpiraLitModule:
    """The LightningModule of a checkpoint, on CPU, built only from allowed targets."""
    read_checkpoint(path, allowed_targets)
    return SpiraLitModule.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
