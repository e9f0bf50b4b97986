"""Noam learning-rate schedule (linear warm-up, then inverse square-root decay)."""

from __future__ import annotations


def noam_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the base lr at optimiser step `step` (0-based).

    Rises linearly to exactly 1.0 at step warmup_steps - 1, then decays as
    1/sqrt(step): warmup**0.5 * min(s**-0.5, s * warmup**-1.5) with s = step + 1.
    """
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    s = step + 1
    return warmup_steps**0.5 * min(s**-0.5, s * warmup_steps**-1.5)
