"""Initial weights from a PANN checkpoint that the user already has on disk (nothing is downloaded).

`model.pretrained_checkpoint: PATH` (model=cnn6) names a checkpoint of PANN's CNN6 as its
authors publish it (`{"model": state_dict, ...}`) or a bare state dict. Every tensor of the
network but its one-logit head (`fc_out`, in place of PANN's 527-class `fc_audioset`) is
taken from it; the file is read with `weights_only=True` (tensors and plain data, no
pickled code), and a missing file, a file of another kind, or a tensor of another shape
is refused with one line naming the file and the tensor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from spira.errors import UserError

# The network's own head: trained from scratch, never loaded.
HEAD_PREFIX = "fc_out."


class PretrainedCheckpointError(UserError, ValueError):
    """model.pretrained_checkpoint cannot initialise the network."""


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_pann_weights(net: torch.nn.Module, path: str | Path) -> dict[str, str | int]:
    """Copy every tensor of `net` but its head from the PANN checkpoint at `path`.

    Returns what was loaded: the file's name, its sha256 and the number of tensors."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedCheckpointError(f"{path}: model.pretrained_checkpoint names no file (nothing is downloaded: give the path of a PANN checkpoint on disk)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a plain checkpoint
        raise PretrainedCheckpointError(f"{path}: not a PyTorch checkpoint of plain tensors ({type(error).__name__})") from None
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise PretrainedCheckpointError(f"{path}: holds no state dict (expected a PANN checkpoint, {{'model': state_dict}})")
    own = {key: value for key, value in net.state_dict().items() if not key.startswith(HEAD_PREFIX)}
    missing = sorted(key for key in own if key not in state)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise PretrainedCheckpointError(f"{path}: not a checkpoint of this network: it lacks {missing[0]}{more}")
    for key, value in own.items():
        theirs = state[key]
        if not isinstance(theirs, torch.Tensor) or theirs.shape != value.shape:
            shape = tuple(theirs.shape) if isinstance(theirs, torch.Tensor) else type(theirs).__name__
            raise PretrainedCheckpointError(
                f"{path}: {key} is {shape} in the checkpoint, {tuple(value.shape)} in the network "
                "(PANN CNN6 weights need model=cnn6, PANN's widths, on 64 log-mel bands)"
            )
    net.load_state_dict({key: state[key] for key in own}, strict=False)
    return {"file": path.name, "sha256": file_sha256(path), "tensors": len(own)}
