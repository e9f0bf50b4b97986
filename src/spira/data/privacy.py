"""Salted one-way ids, so no speaker id or source path reaches an output."""

from __future__ import annotations

import hashlib
import os

from omegaconf import DictConfig


def salted_id(value: str, salt: str, length: int = 16) -> str:
    return hashlib.sha256(f"{salt}\x00{value}".encode("utf-8")).hexdigest()[:length]


def resolve_salt(data: DictConfig) -> tuple[str, str]:
    """The salt for hashing ids and where it came from (never the salt itself).

    The environment variable named by `data.speaker_id_salt_env` wins over the
    config value: a real cohort's salt stays out of params.yaml and git, so ids
    like "P001" cannot be re-hashed and matched by anyone reading the outputs.
    """
    variable = data.get("speaker_id_salt_env")
    if variable and os.environ.get(str(variable)):
        return os.environ[str(variable)], f"environment variable {variable}"
    return str(data.speaker_id_salt), "data.speaker_id_salt"
