"""What `spira serve` accepts: upload size, queue, upload time and recording length.

No web framework here: the `spira serve` options take their defaults from this
module without importing FastAPI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024
# Concurrent scorings (decode, MFCC, ONNX) in worker threads; the other admitted requests wait
# holding only their upload (python-multipart keeps up to 1 MiB of it in memory, the rest on disk).
SCORING_THREADS = max(1, min(4, os.cpu_count() or 1))
# The Retry-After of a 503: one scoring of a recording of a few seconds takes well under a second.
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class ServeLimits:
    """max_upload_bytes: the largest request body (its Content-Length) read at all (413 above).
    max_queue: /predict requests handled at once, receiving, waiting for a scoring thread or
    being scored; one more gets 503 with Retry-After before its body is read.
    upload_timeout: seconds a request body may take to arrive (408 after).
    max_audio_seconds: the longest recording scored (422 `too_long`): SPIRA's recordings last
    seconds, and 10 minutes decode to 37 MiB of 16 kHz float32 samples per scoring thread."""

    max_upload_bytes: int = 20 * MIB
    max_queue: int = 32
    upload_timeout: float = 30.0
    max_audio_seconds: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_queue", "upload_timeout", "max_audio_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
