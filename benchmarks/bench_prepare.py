"""Benchmark the prepare stage: files/s and peak memory on a generated corpus.

    python benchmarks/bench_prepare.py                      # 2000 short files + 2 ten-minute files
    python benchmarks/bench_prepare.py --files 20000 --workers 2

The corpus (WAV and FLAC at 16/22.05/44.1/48 kHz, some stereo) is written to a
temporary folder, prepared with data=manifest exactly as the DVC stage does,
and deleted. Peak memory is the maximum resident set size of the stage process
and of the largest worker process (getrusage), so a worker decoding a
ten-minute 48 kHz file shows what it held.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from spira.config import compose_config
from spira.data.prepare import prepare_dataset
from spira.pipeline.data import prepare_settings
from results_file import default_output, recorded

RATES = (16000, 22050, 44100, 48000)


def write_corpus(root: Path, files: int, seconds: float, long_files: int, long_minutes: float) -> float:
    """The generated corpus and its manifest; returns the seconds of audio written."""
    audio = root / "audio"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, total_seconds = ["file,label,speaker_id"], 0.0
    for number in range(files):
        rate = RATES[number % len(RATES)]
        channels = 2 if number % 5 == 0 else 1
        extension = "flac" if number % 3 == 0 else "wav"
        samples = 0.3 * rng.standard_normal((int(seconds * rate), channels)).astype(np.float32)
        sf.write(audio / f"{number:06d}.{extension}", samples, rate, subtype="PCM_16")
        lines.append(f"audio/{number:06d}.{extension},{(number // 4) % 2},s{number // 4:05d}")
        total_seconds += seconds
    block_seconds = 10
    for number in range(long_files):
        path = audio / f"long_{number}.wav"
        with sf.SoundFile(path, "w", 48000, 2, subtype="PCM_16") as out:
            for _ in range(int(long_minutes * 60 / block_seconds)):
                out.write(0.3 * rng.standard_normal((48000 * block_seconds, 2)).astype(np.float32))
        lines.append(f"audio/long_{number}.wav,{number % 2},long{number}")
        total_seconds += long_minutes * 60
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return total_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="short files (default 2000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each short file (default 3 s)")
    parser.add_argument("--long-files", type=int, default=2, help="48 kHz stereo long files (default 2)")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of each long file (default 10 min)")
    parser.add_argument("--workers", type=int, default=2, help="data.num_workers (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the corpus (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=default_output("bench_prepare"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_prepare", args.output):
        logging.basicConfig(level=logging.WARNING)

        work = Path(tempfile.mkdtemp(prefix="spira-bench-", dir=args.dir))
        try:
            started = time.perf_counter()
            audio_seconds = write_corpus(work / "corpus", args.files, args.seconds, args.long_files, args.long_minutes)
            generated = time.perf_counter() - started
            data = compose_config(
                [
                    "data=manifest",
                    f"data.root={work / 'corpus'}",
                    f"data.num_workers={args.workers}",
                    "data.public_dataset=true",  # a synthetic corpus: its ids are no secret
                ]
            ).data
            started = time.perf_counter()
            prepared = prepare_dataset(prepare_settings(data), work / "prepared", work / "quarantine")
            elapsed = time.perf_counter() - started
        finally:
            shutil.rmtree(work, ignore_errors=True)

        total = args.files + args.long_files
        stage_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"corpus: {args.files} x {args.seconds:g} s + {args.long_files} x {args.long_minutes:g} min (48 kHz stereo), "
              f"{audio_seconds / 3600:.2f} h of audio, generated in {generated:.0f} s")  # fmt: skip
        print(f"prepare: {total} files in {elapsed:.1f} s = {total / elapsed:.1f} files/s "
              f"({audio_seconds / elapsed:.0f} s of audio per s), workers={args.workers}, accepted {len(prepared.manifest)}")  # fmt: skip
        print(f"peak RSS: stage process {stage_mib:.0f} MiB, largest worker {worker_mib:.0f} MiB")


if __name__ == "__main__":
    main()
