"""README.md and docs/: their run figures are what scripts/make_docs.py writes, their links resolve."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_docs.py"
INPUTS = ("metrics", "eval/threshold.json", "eval/report.md", "reports/machine.json", "benchmarks/results", "params.yaml")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def load_make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_docs = load_make_docs()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the docs and of the run files they quote."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    for relative in INPUTS:
        source, target = ROOT / relative, tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            shutil.copy(source, target)
    return tmp_path


def run_script(root: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *options], capture_output=True, text=True)


def test_committed_docs_are_what_make_docs_writes():
    assert make_docs.run(ROOT, check=True) == []


def test_every_document_has_its_figures_in_blocks():
    # The pages that quote run figures keep them inside blocks the script owns.
    names = {path.relative_to(ROOT).as_posix(): {m.group("name") for m in make_docs.BLOCK.finditer(path.read_text())} for path in make_docs.documents(ROOT)}
    assert {"headline"} <= names["README.md"]
    assert {"split", "test-metrics", "participants", "gate"} <= names["docs/evaluation.md"]
    assert {"audit", "bench-train-throughput"} <= names["docs/noise-and-shortcuts.md"]
    assert {"test-tiers"} <= names["docs/testing.md"]


def test_a_changed_metric_changes_its_blocks_and_fails_the_check(project: Path):
    test_metrics = project / "metrics/test.json"
    figures = json.loads(test_metrics.read_text())
    figures["test_clean"]["auroc"] = 0.612345
    test_metrics.write_text(json.dumps(figures))
    audit_before = (project / "docs/noise-and-shortcuts.md").read_text()

    checked = run_script(project, "--check")
    assert checked.returncode == 1
    assert "README.md: headline" in checked.stderr and "docs/evaluation.md: test-metrics" in checked.stderr
    assert "audit" not in checked.stderr and "participants" not in checked.stderr
    assert "0.612" not in (project / "README.md").read_text()  # --check writes nothing

    assert run_script(project).returncode == 0
    clean, noisy = figures["test_clean"], figures["test_noisy"]
    clean_interval = f"({clean['auroc_ci_low']:.3f}–{clean['auroc_ci_high']:.3f})"
    assert f"clean-test AUROC 0.612 {clean_interval}" in (project / "README.md").read_text()
    noisy_cell = f"{noisy['auroc']:.3f} ({noisy['auroc_ci_low']:.3f}–{noisy['auroc_ci_high']:.3f})"
    assert f"| AUROC | 0.612 {clean_interval} | {noisy_cell} |" in (project / "docs/evaluation.md").read_text()
    assert (project / "docs/noise-and-shortcuts.md").read_text() == audit_before
    assert run_script(project, "--check").returncode == 0


def test_the_speaker_count_comes_from_the_metrics(project: Path):
    test_metrics = project / "metrics/test.json"
    figures = json.loads(test_metrics.read_text())
    figures["test_clean"]["n_speakers"] = 18
    test_metrics.write_text(json.dumps(figures))
    assert make_docs.run(project, check=False) != []
    assert "60 test files from 18 speakers" in (project / "README.md").read_text()
    assert "holds 60 files from 18 speakers" in (project / "docs/evaluation.md").read_text()


def test_a_missing_run_file_is_one_line_naming_it(project: Path):
    (project / "metrics/audit.json").unlink()
    result = run_script(project)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["make_docs: metrics/audit.json is missing: run `dvc repro` (or `dvc pull`) first"]


def test_benchmark_blocks_state_no_figures_until_the_benchmark_ran(project: Path):
    results = project / "benchmarks/results"
    for name in ("bench_epoch.json", "test_tiers.json"):
        (results / name).unlink(missing_ok=True)
    make_docs.run(project, check=False)
    performance = (project / "docs/performance.md").read_text()
    block = re.search(r"<!-- generated: bench-epoch -->\n(.*?)<!-- /generated -->", performance, re.S).group(1)
    assert block == "No figures recorded yet: they come from running `python benchmarks/bench_epoch.py` (writes `benchmarks/results/bench_epoch.json`).\n"

    (results / "bench_epoch.json").write_text(json.dumps({
        "benchmark": "bench_epoch", "command": "python benchmarks/bench_epoch.py --batches 40",
        "machine": {"cpu": "Test CPU", "architecture": "x86_64", "cpus": 2, "accelerator": "cpu"},
        "lines": ["training epoch  baseline 34.4 windows/s  pipeline 46.4 windows/s  (1.35 x baseline)"],
    }))
    (results / "test_tiers.json").write_text(json.dumps({"fast_seconds": 96, "full_seconds": 630, "tests_fast": 210, "tests_full": 300, "machine": "a 2-core test VM", "commit": "0123456789abcdef"}))
    make_docs.run(project, check=False)
    performance = (project / "docs/performance.md").read_text()
    assert "`python benchmarks/bench_epoch.py --batches 40` on Test CPU, x86_64, 2 CPUs, CPU only:" in performance
    assert "pipeline 46.4 windows/s  (1.35 x baseline)" in performance
    testing = (project / "docs/testing.md").read_text()
    assert ("On a fresh clone of commit 0123456 (a 2-core test VM; `python benchmarks/test_tiers.py`): "
            "`make test-fast` runs 210 tests in 1.6 min; `make test` runs 300 tests in 10.5 min.") in testing


def test_an_unknown_block_is_refused(project: Path):
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n<!-- generated: no-such-figure -->\n<!-- /generated -->\n")
    result = run_script(project, "--check")
    assert result.returncode == 1
    assert "README.md: unknown generated block 'no-such-figure'" in result.stderr


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_every_relative_link_resolves():
    broken = []
    for document in make_docs.documents(ROOT):
        text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, fragment = target.partition("#")
            resolved = (document.parent / file_part).resolve() if file_part else document
            if not resolved.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


def test_a_benchmark_writes_what_it_prints_for_make_docs(tmp_path: Path):
    output = tmp_path / "install_size.json"
    printed = subprocess.run([sys.executable, "benchmarks/install_size.py", "--output", str(output)], cwd=ROOT, capture_output=True, text=True, check=True)
    recorded = json.loads(output.read_text())
    assert recorded["lines"] == printed.stdout.splitlines() and recorded["lines"][0].startswith("spira[serve]: ")
    assert recorded["benchmark"] == "install_size" and recorded["command"] == f"python benchmarks/install_size.py --output {output}"
    assert recorded["machine"]["cpus"] >= 1 and "node" not in recorded["machine"]
