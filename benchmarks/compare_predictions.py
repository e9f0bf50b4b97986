"""Per-file test probabilities of one checkpoint on a device vs on the CPU, within a tolerance.

Used by benchmarks/gpu_check.sh: the model trained on the GPU (bf16-mixed) is
scored on the clean and noisy test sets twice, on the device with the run's
precision and on the CPU in float32, and the per-file probabilities (mean of
the window sigmoids) must agree within --tolerance. Exits 1 when they do not.

    python benchmarks/compare_predictions.py CHECKPOINT [--features data/features] [--device cuda] [--precision bf16-mixed] [--tolerance 0.02]
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spira.evaluation.evaluate import predict_windows
from spira.features.store import NOISY_TEST, load_split
from spira.metrics import aggregate_per_file
from spira.training.module import SpiraLitModule


class OnDevice(torch.nn.Module):
    """`module` on `device` at `precision`, fed and returning CPU tensors (as predict_windows does)."""

    def __init__(self, module: torch.nn.Module, device: str, precision: str):
        super().__init__()
        self.module, self.device_name = module.to(device), device
        self.bf16 = precision.startswith("bf16")

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        autocast = torch.autocast(device_type=torch.device(self.device_name).type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with autocast:
            return self.module(batch.to(self.device_name)).float().cpu()


def file_probabilities(module: torch.nn.Module, features_dir: Path, split: str, device: str, precision: str) -> np.ndarray:
    """Per-file mean window probability of `split`, computed on `device` at `precision`."""
    windows, index = load_split(features_dir, split)
    window_prob = predict_windows(OnDevice(module, device, precision), windows, 256, f"{split} on {device} {precision}")
    numbers = pd.factorize(index["file_id"])[0]
    return aggregate_per_file(numbers, window_prob, index["label"].to_numpy())[1]


def compare(module: torch.nn.Module, features_dir: Path, device: str, precision: str) -> dict[str, float]:
    """Largest |device - CPU float32| per-file probability difference of each test set."""
    differences = {}
    for split in ("test", NOISY_TEST):
        reference = file_probabilities(module, features_dir, split, "cpu", "32-true")
        measured = file_probabilities(module, features_dir, split, device, precision)
        differences[split] = float(np.abs(measured - reference).max())
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16-mixed", help="the run's trainer.precision")
    parser.add_argument("--tolerance", type=float, default=0.02, help="max |device - CPU| per-file probability")
    args = parser.parse_args()
    module = SpiraLitModule.load_from_checkpoint(str(args.checkpoint), map_location="cpu")
    differences = compare(module, args.features, args.device, args.precision)
    agree = all(value <= args.tolerance for value in differences.values())
    for split, value in differences.items():
        print(f"per-file test probabilities {split}: max |{args.device} {args.precision} - cpu 32-true| = {value:.2e} (tolerance {args.tolerance:g})")
    print(f"per-file probabilities agree with the CPU: {'yes' if agree else 'NO'}")
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
