"""A bounded load run on `spira serve` (benchmarks/bench_serve_load.py, as a user runs it):
a fixed number of uploads at 1, 4 and 16 clients, then an overload beyond the queue."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, PipelineRun, run
from spira.serving.predict import load_predictor
from test_serving_fuzz import encoded, voice

pytestmark = pytest.mark.slow
REQUESTS = 24  # per concurrency level
CONCURRENCY = [1, 4, 16]
# Resident memory the server may gain after its warm-up (32 uploads from 32 clients, the
# overload's concurrency: allocator arenas of every thread the run uses and onnxruntime's
# arena are then at their size. Warmed up at 16 clients only, the overload's first use of
# 32 grew RSS by 10.6 MiB in one of three runs, memory the first use of that concurrency
# allocates, which a warm-up at 16 never reaches).
# 10 MiB over the 72 uploads of the levels and the 16 or more scored in the overload is less
# than one 125 KiB upload, or one 250 KiB decoded recording, kept per scored request.
RSS_GROWTH_MIB = 10.0


def test_load_run_answers_everything_with_flat_memory(smoke_pipeline: PipelineRun, tmp_path: Path):
    export = smoke_pipeline.repo / "models/export"
    recording = tmp_path / "four-seconds.wav"
    recording.write_bytes(encoded(tmp_path, "source.wav", voice(4.0, 16000), 16000, subtype="PCM_16"))
    figures = tmp_path / "load.json"
    command = [sys.executable, "benchmarks/bench_serve_load.py", "--model", str(export), "--requests", str(REQUESTS),
               "--concurrency", *map(str, CONCURRENCY), "--recording", str(recording), "--json", str(figures), "--output", str(tmp_path / "results.json")]  # fmt: skip
    printed = run(command, REPO_ROOT).stdout.splitlines()
    result = json.loads(figures.read_text())
    assert printed == result["report"]
    # The figures `make docs` would quote are the printed lines, with the command that printed them.
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert recorded["lines"] == printed and recorded["command"].startswith("python benchmarks/bench_serve_load.py --model")
    assert [line.split()[:2] for line in printed[2:5]] == [[str(clients), str(REQUESTS)] for clients in CONCURRENCY]

    expected = load_predictor(export).predict_file(recording, recording.name)["probability"]
    levels = result["levels"]
    assert [level["concurrency"] for level in levels] == CONCURRENCY
    for level in levels:
        # Every request answered 200 with the in-process probability: nothing dropped, nothing mixed up.
        assert (level["statuses"], level["errors"], level["dropped"]) == ({"200": REQUESTS}, 0, 0)
        assert level["probabilities"] == [expected]
        assert len(level["latencies_ms"]) == REQUESTS and level["wall_s"] > 0

    # Twice the queue's clients: what is not admitted gets 503 with Retry-After, nothing else.
    overload = result["overload"]
    assert overload["concurrency"] == 2 * result["max_queue"] == 32 and overload["dropped"] == 0
    assert set(overload["statuses"]) == {"200", "503"} and sum(overload["statuses"].values()) == overload["requests"] == 64
    assert overload["busy_without_retry_after"] == 0 and overload["probabilities"] == [expected]

    baseline = levels[0]["rss_before_mib"]
    assert baseline > 50  # a real reading of the server process (the model and onnxruntime alone take more)
    assert max(level["rss_after_mib"] for level in levels) - baseline <= RSS_GROWTH_MIB
    assert overload["rss_after_mib"] - baseline <= RSS_GROWTH_MIB
    assert result["leftovers"] == []
