"""Salted one-way ids, so no speaker id or source path reaches an output."""

from __future__ import annotations

import hashlib


def salted_id(value: str, salt: str, length: int = 16) -> str:
    return hashlib.sha256(f"{salt}\x00{value}".encode("utf-8")).hexdigest()[:length]
