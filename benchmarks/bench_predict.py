"""Benchmark prediction with an exported model: latency and throughput, CPU.

    python benchmarks/bench_predict.py                       # models/export, 30 repeats, a batch of 20 files
    python benchmarks/bench_predict.py --model PATH --repeats 50 --files 40

Recordings are synthetic 10 s, 48 kHz mono WAVs (a voiced tone in noise; the
content does not change the cost), written to a temporary folder and deleted.
It measures:
- in process (`Predictor.predict_file`: decode, resample, windows, MFCC, ONNX):
  p50/p95 latency of one 10 s file, throughput over the batch;
- `spira predict` on the batch from the shell: wall time including start-up;
- `spira serve` on 127.0.0.1: p50/p95 latency of one upload (POST /predict),
  throughput over the batch with one client.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from spira.serving.predict import load_predictor
from results_file import default_output, recorded

RATE, SECONDS = 48000, 10.0


def write_recordings(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(RATE * SECONDS)) / RATE
    paths = []
    for number in range(count):
        tone = 0.3 * np.sin(2 * np.pi * (110 + 5 * number) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        path = folder / f"recording_{number:03d}.wav"
        sf.write(path, (tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def percentiles(seconds: list[float]) -> str:
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(seconds)})"


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_in_process(model: str, files: list[Path], repeats: int) -> None:
    predictor = load_predictor(model)
    predictor.predict_file(files[0], "warm-up")
    latency = [timed(lambda: predictor.predict_file(files[0], "one")) for _ in range(repeats)]
    batch = timed(lambda: [predictor.predict_file(path, path.name) for path in files])
    print(f"in process, one 10 s file:        {percentiles(latency)}")
    print(f"in process, {len(files)} files:              {batch:6.2f} s   {len(files) / batch:6.1f} files/s")


def bench_command(model: str, files: list[Path]) -> None:
    command = ["spira", "predict", "--model", model, "--out", os.devnull, *map(str, files)]
    wall = timed(lambda: subprocess.run(command, check=True, capture_output=True))
    print(f"`spira predict` {len(files)} files:          {wall:6.2f} s   {len(files) / wall:6.1f} files/s (with start-up)")


def bench_http(model: str, files: list[Path], repeats: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["spira", "serve", "--model", model, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(240):
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            else:
                raise SystemExit("spira serve did not start within 120 s")
            uploads = [(path.name, path.read_bytes()) for path in files]

            def post(upload: tuple[str, bytes]) -> None:
                client.post("/predict", files={"file": upload}).raise_for_status()

            post(uploads[0])
            latency = [timed(lambda: post(uploads[0])) for _ in range(repeats)]
            batch = timed(lambda: [post(upload) for upload in uploads])
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"HTTP POST /predict, one 10 s file: {percentiles(latency)}")
    print(f"HTTP POST /predict, {len(files)} files:      {batch:6.2f} s   {len(files) / batch:6.1f} files/s (one client)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/export", help="export folder (default: models/export)")
    parser.add_argument("--repeats", type=int, default=30, help="latency samples (default: 30)")
    parser.add_argument("--files", type=int, default=20, help="files in the throughput batch (default: 20)")
    parser.add_argument("--output", type=Path, default=default_output("bench_predict"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_predict", args.output):
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {SECONDS:g} s {RATE} Hz mono WAV recordings")
        with tempfile.TemporaryDirectory() as folder:
            files = write_recordings(Path(folder), args.files)
            bench_in_process(args.model, files, args.repeats)
            bench_command(args.model, files)
            bench_http(args.model, files, args.repeats)


if __name__ == "__main__":
    main()
