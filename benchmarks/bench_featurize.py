"""Featurize speed: audio-seconds per second per core, window by window vs once per file.

Same prepared files, same run, one process, torch single-threaded (featurize
runs one such process per `features.num_workers`). Each path reads the file
and computes the MFCC of every window:

- per-window, torchaudio: torchaudio's MFCC on each 4 s window (featurize before issue 13);
- per-window: this front end (`MfccExtractor`) on each window;
- per-file: `MfccExtractor.file_windows`, one transform per file, windows sliced.

It also prints the largest absolute difference between the per-file and the
per-window features over all the windows measured.

    python benchmarks/bench_featurize.py [--prepared data/prepared] [--files 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import soundfile as sf
import torch
import torchaudio.transforms as T

from spira.config import compose_config
from spira.data.manifest import read_prepared_manifest
from spira.features.mfcc import build_extractor
from spira.features.windows import cut_windows, window_spec
from results_file import default_output, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="prepare's output folder")
    parser.add_argument("--files", type=int, default=60, help="files measured (the first of the manifest)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the files per path; the fastest counts")
    parser.add_argument("--output", type=Path, default=default_output("bench_featurize"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_featurize", args.output):
        torch.set_num_threads(1)
        features = compose_config().features
        spec, extractor = window_spec(features), build_extractor(features)
        melkwargs = {key: int(features[key]) for key in ("n_fft", "win_length", "hop_length", "n_mels")}
        torchaudio_mfcc = T.MFCC(sample_rate=spec.sample_rate, n_mfcc=int(features.n_mfcc), log_mels=bool(features.log_mels), melkwargs=melkwargs)
        paths = [args.prepared / path for path in read_prepared_manifest(args.prepared)["path"][: args.files]]
        seconds = sum(sf.info(path).frames for path in paths) / spec.sample_rate

        def per_window_torchaudio(samples):
            windows = torch.from_numpy(cut_windows(samples, spec)[0])
            return torchaudio_mfcc(windows.unsqueeze(1)).squeeze(1).transpose(1, 2)

        paths_to_measure = {
            "per-window, torchaudio": per_window_torchaudio,
            "per-window": lambda samples: extractor(torch.from_numpy(cut_windows(samples, spec)[0])),
            "per-file": lambda samples: extractor.file_windows(samples, spec)[0],
        }
        print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread")
        print(f"{len(paths)} files, {seconds:.0f} s of audio, {spec.window_seconds:g} s windows every {spec.step_seconds:g} s")
        rates, outputs = {}, {}
        with torch.inference_mode():
            for name, transform in paths_to_measure.items():
                best = float("inf")
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    outputs[name] = [transform(sf.read(path, dtype="float32")[0]) for path in paths]
                    best = min(best, time.perf_counter() - started)
                rates[name] = seconds / best
            for name, rate in rates.items():
                print(f"featurize {name:<24} {rate:8.1f} audio-seconds/s per core  ({rate / rates['per-window, torchaudio']:.2f} x per-window, torchaudio)")
            print(f"per-file / per-window (this front end): {rates['per-file'] / rates['per-window']:.2f} x")
            difference = max((a - b).abs().max().item() for a, b in zip(outputs["per-file"], outputs["per-window"]))
            to_torchaudio = max((a - b).abs().max().item() for a, b in zip(outputs["per-file"], outputs["per-window, torchaudio"]))
            windows = sum(len(features) for features in outputs["per-file"])
            print(f"max |per-file - per-window| over {windows} windows: {difference:.3g} (to torchaudio's MFCC: {to_torchaudio:.3g})")


if __name__ == "__main__":
    main()
