"""Load on `spira serve` over 127.0.0.1: a fixed number of uploads at fixed concurrency, then an overload.

    python benchmarks/bench_serve_load.py                          # models/export; 48 uploads at 1, 4 and 16 clients
    python benchmarks/bench_serve_load.py --requests 96 --concurrency 1 4 16 --json load.json

It starts `spira serve --max-queue Q` (Q: the highest concurrency) with a TMPDIR of its
own and warms it up with 2 x Q uploads from 2 x Q clients, the most the run will use (every server
thread and allocator arena the run touches exists before memory is first read). Then, for each concurrency, exactly
--requests uploads of one recording (bench_predict's 10 s 48 kHz mono WAV) go out from
that many client threads, one keep-alive connection each, and it reports throughput,
p50/p95 latency, errors (answers other than 200), dropped (requests without an answer:
a connection error or the per-request --timeout), how many distinct probabilities came
back (one: the same upload), and the server's resident memory (VmRSS) before and after.
Last, the overload: 4 x Q uploads from 2 x Q clients against the queue of Q, where every
answer must be 200 or 503 with Retry-After. Every loop is bounded by a count and every request by --timeout:
the run stops by itself. The server is stopped at the end; its TMPDIR must be empty then.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from bench_predict import RATE, SECONDS, write_recordings
from results_file import default_output, recorded


@dataclass
class Level:
    """What one batch of requests at one concurrency got back."""

    concurrency: int
    requests: int
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)  # HTTP status -> count
    dropped: int = 0
    probabilities: list[float] = field(default_factory=list)  # the distinct ones of the 200s
    busy_without_retry_after: int = 0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "200")

    def row(self) -> str:
        p50, p95 = np.percentile(self.latencies_ms, [50, 95]) if self.latencies_ms else (float("nan"),) * 2
        return (
            f"{self.concurrency:7d} {self.requests:9d} {self.requests / self.wall_s:7.1f} {p50:8.1f} {p95:8.1f} "
            f"{self.errors:7d} {self.dropped:8d} {len(self.probabilities):14d}   {self.rss_before_mib:6.1f} -> {self.rss_after_mib:6.1f}"
        )


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(model: str, max_queue: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    """`spira serve` on a free port of 127.0.0.1, answering /health (up to 120 s)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "spira.cli", "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), "--max-queue", str(max_queue)]
    server = subprocess.Popen(command, env=os.environ | {"TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if server.poll() is not None:
            raise SystemExit(f"spira serve exited with status {server.returncode}")
        try:
            httpx.get(f"{base}/health", timeout=2).raise_for_status()
            return server, base
        except httpx.TransportError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("spira serve did not answer within 120 s")


def run_level(base: str, upload: tuple[str, bytes], concurrency: int, requests: int, timeout: float, pid: int) -> Level:
    """Exactly `requests` uploads from `concurrency` client threads; each thread stops when none are left."""
    level = Level(concurrency, requests, rss_before_mib=rss_mib(pid))
    tickets, lock = iter(range(requests)), threading.Lock()
    answers: list[tuple[int, float, float | None, bool]] = []  # status, ms, probability, has Retry-After

    def client() -> None:
        with httpx.Client(base_url=base, timeout=timeout) as session:
            while True:
                with lock:
                    if next(tickets, None) is None:
                        return
                start = time.perf_counter()
                try:
                    answer = session.post("/predict", files={"file": upload})
                except httpx.HTTPError:
                    continue  # counted as dropped: sent, never answered
                probability = answer.json().get("probability") if answer.status_code == 200 else None
                answers.append((answer.status_code, (time.perf_counter() - start) * 1000, probability, "retry-after" in answer.headers))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    deadline = start + timeout * (requests / concurrency + 1)  # every request could wait its whole timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    level.wall_s = time.perf_counter() - start
    done = list(answers)
    level.dropped = requests - len(done)
    level.statuses = {str(status): count for status, count in sorted(Counter(status for status, *_ in done).items())}
    level.latencies_ms = [ms for status, ms, _, _ in done if status == 200]
    level.probabilities = sorted({probability for status, _, probability, _ in done if status == 200})
    level.busy_without_retry_after = sum(1 for status, _, _, retry in done if status == 503 and not retry)
    level.rss_after_mib = rss_mib(pid)
    return level


def run_load(model: str, concurrency: list[int], requests: int, timeout: float, recording: Path | None = None) -> dict:
    """Warm-up, the levels and the overload against one server; its leftovers in TMPDIR."""
    queue = max(concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        recording = recording or write_recordings(Path(folder), 1)[0]
        upload = (recording.name, recording.read_bytes())
        tmp = Path(folder) / "tmp"
        tmp.mkdir()
        server, base = start_server(model, queue, tmp)
        try:
            # At the overload's concurrency: memory read after it grows only if requests leave something behind.
            warm_up = run_level(base, upload, 2 * queue, 2 * queue, timeout, server.pid)
            levels = [run_level(base, upload, clients, requests, timeout, server.pid) for clients in concurrency]
            overload = run_level(base, upload, 2 * queue, 4 * queue, timeout, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        # onnxruntime keeps a 51-byte session counter, `.ses`, in TMPDIR.
        leftovers = sorted(path.name for path in tmp.rglob("*") if path.name != ".ses")
        return {
            "cpus": os.cpu_count(),
            "max_queue": queue,
            "upload_bytes": len(upload[1]),
            "warm_up": asdict(warm_up),
            "levels": [asdict(level) | {"errors": level.errors} for level in levels],
            "overload": asdict(overload),
            "leftovers": leftovers,
            "report": report(queue, describe(recording), levels, overload, leftovers),
        }


def describe(recording: Path) -> str:
    info = sf.info(recording)
    return f"{info.duration:g} s {info.samplerate} Hz {info.channels}-channel {info.format} ({recording.stat().st_size / 1024:.0f} KiB)"


def report(queue: int, upload: str, levels: list[Level], overload: Level, leftovers: list[str]) -> list[str]:
    lines = [
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; spira serve --max-queue {queue} on 127.0.0.1; each upload one {upload}",
        "clients  requests   req/s   p50 ms   p95 ms  errors  dropped  probabilities   RSS MiB before -> after",
        *(level.row() for level in levels),
    ]
    answered = overload.statuses
    lines.append(
        f"overload: {overload.concurrency} clients against --max-queue {queue}, {overload.requests} requests: "
        f"{answered.get('200', 0)} answered 200, {answered.get('503', 0)} answered 503 "
        f"({overload.busy_without_retry_after} without Retry-After), "
        f"{overload.requests - overload.dropped - answered.get('200', 0) - answered.get('503', 0)} other, {overload.dropped} dropped; "
        f"RSS {overload.rss_before_mib:.1f} -> {overload.rss_after_mib:.1f} MiB"
    )
    lines.append(f"temporary files left in the server's TMPDIR: {len(leftovers)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/export", help="export folder (default: models/export)")
    parser.add_argument("--requests", type=int, default=48, help="uploads at each concurrency (default: 48)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="client threads per level (default: 1 4 16)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take before it counts as dropped (default: 60)")
    parser.add_argument("--recording", type=Path, help=f"the file every request uploads (default: a {SECONDS:g} s {RATE} Hz mono WAV)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--output", type=Path, default=default_output("bench_serve_load"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_serve_load", args.output):
        result = run_load(str(Path(args.model).resolve()), args.concurrency, args.requests, args.timeout, args.recording)
        print("\n".join(result["report"]))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
