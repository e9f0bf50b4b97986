"""Write every figure that README.md and docs/*.md quote from a run, from the run's own files.

A figure lives between `<!-- generated: NAME -->` and `<!-- /generated -->`; this
script replaces what lies between them with what block NAME renders from
`metrics/*.json`, `eval/`, `reports/machine.json`, `benchmarks/results/*.json` and
`params.yaml` (which test figures are shared by construction).
Text outside the markers is never touched.

    python scripts/make_docs.py            # rewrite the blocks (make docs)
    python scripts/make_docs.py --check    # exit 1 and list the blocks that differ

A pipeline file a block needs that is missing ends the script with one line naming
it. A benchmark that has not been run yet is no error: its block says which command
produces the figures and states none.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from spira.evaluation.report import PATIENT_ONLY_METRICS

DOCUMENTS = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(?P<open><!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /generated -->)", re.S)
METRIC_LABELS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("ppv", "PPV"),
    ("npv", "NPV"),
    ("f1", "F1"),
    ("auroc", "AUROC"),
)
AUDIT_LABELS = (
    ("source", "source"),
    ("sample_rate", "sample rate"),
    ("channels", "channels"),
    ("format", "file format"),
    ("duration", "duration"),
    ("loudness", "loudness"),
    ("noise_floor", "noise floor"),
    ("clipping", "clipping"),
)
# Each benchmark's results file and the command that writes it (its default --output).
BENCHMARKS = {
    "bench_featurize": "python benchmarks/bench_featurize.py",
    "bench_prepare": "python benchmarks/bench_prepare.py",
    "bench_epoch": "python benchmarks/bench_epoch.py",
    "bench_train_throughput": "python benchmarks/bench_train_throughput.py",
    "bench_predict": "python benchmarks/bench_predict.py --model models/export",
    "bench_serve_load": "python benchmarks/bench_serve_load.py --model models/export",
    "install_size": "python benchmarks/install_size.py",
}


class DocsError(Exception):
    """An input the docs need is missing or unreadable, or a block has no renderer."""


class Inputs:
    """The run's files under one repository root, each read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, object] = {}

    def json(self, relative: str) -> dict:
        if relative not in self._cache:
            path = self.root / relative
            if not path.is_file():
                raise DocsError(f"{relative} is missing: run `dvc repro` (or `dvc pull`) first")
            try:
                self._cache[relative] = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise DocsError(f"{relative} is not readable JSON ({error})") from None
        return self._cache[relative]  # type: ignore[return-value]

    def text(self, relative: str) -> str:
        path = self.root / relative
        if not path.is_file():
            raise DocsError(f"{relative} is missing: run `dvc repro` (or `dvc pull`) first")
        return path.read_text()

    def optional_json(self, relative: str) -> dict | None:
        return self.json(relative) if (self.root / relative).is_file() else None


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def with_interval(figures: dict, metric: str) -> str:
    low, high = figures.get(f"{metric}_ci_low"), figures.get(f"{metric}_ci_high")
    if low is None or high is None:
        return number(figures[metric])
    return f"{number(figures[metric])} ({number(low)}–{number(high)})"


def describe_machine(machine: dict) -> str:
    parts = [machine.get("cpu", "unknown CPU"), machine.get("architecture", "")]
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}, {machine.get('torch_threads', '?')} threads")
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    accelerator = machine.get("accelerator", "cpu")
    parts.append(machine.get("gpu") or ("CPU only" if accelerator == "cpu" else accelerator))
    return ", ".join(part for part in parts if part)


def headline(inputs: Inputs) -> str:
    test = inputs.json("metrics/test.json")
    clean, noisy = test["test_clean"], test["test_noisy"]
    return (
        f"The committed model scores clean-test AUROC {with_interval(clean, 'auroc')} and noisy-test AUROC "
        f"{with_interval(noisy, 'auroc')}; accuracy at the threshold chosen on validation is "
        f"{with_interval(clean, 'accuracy')} clean and {with_interval(noisy, 'accuracy')} noisy "
        f"({clean['n_files']} test files from {clean['n_speakers']} speakers; 95% speaker-bootstrap intervals).\n"
    )


def machine(inputs: Inputs) -> str:
    return f"The committed run was made on: {describe_machine(inputs.json('reports/machine.json'))} (`reports/machine.json`).\n"


def split(inputs: Inputs) -> str:
    clean = inputs.json("metrics/test.json")["test_clean"]
    threshold = inputs.json("eval/threshold.json")
    return (
        f"The committed run's test split holds {clean['n_files']} files from {clean['n_speakers']} speakers; "
        f"the threshold was chosen on {threshold['validation_files']} validation files "
        f"({', '.join(threshold['validation_sets'])}).\n"
    )


def participants(inputs: Inputs) -> str:
    report = inputs.text("eval/report.md")
    section = re.search(r"## Participants and recordings\n\n(?P<table>(?:\|.*\n)+)", report)
    if section is None:
        raise DocsError("eval/report.md has no 'Participants and recordings' table: run `dvc repro evaluate`")
    return section.group("table")


def test_metrics(inputs: Inputs) -> str:
    test = inputs.json("metrics/test.json")
    threshold = inputs.json("eval/threshold.json")
    train = inputs.json("metrics/train.json")
    clean, noisy = test["test_clean"], test["test_noisy"]
    # The noisy test adds noise to controls only: its patients are the clean test's, and so is every figure of patients alone.
    patients_unchanged = int(yaml.safe_load(inputs.text("params.yaml"))["noisy_test"]["num_noise_patient"]) == 0

    def noisy_cell(key: str) -> str:
        return "= clean test" if patients_unchanged and key in PATIENT_ONLY_METRICS else with_interval(noisy, key)

    lines = [
        f"Threshold {number(threshold['threshold'])} (`{threshold['rule']}` on {threshold['validation_files']} "
        f"validation files: sensitivity {number(threshold['validation_sensitivity'])}, "
        f"specificity {number(threshold['validation_specificity'])}). "
        f"Best checkpoint: epoch {train['best_epoch']} of {train['epochs_run']}.",
        "",
        "| metric | clean test | noisy test (unseen noise) |",
        "|---|---|---|",
        *(f"| {label} | {with_interval(clean, key)} | {noisy_cell(key)} |" for key, label in METRIC_LABELS),
        f"| accuracy at 0.5 | {number(clean['accuracy_at_0.5'])} | {number(noisy['accuracy_at_0.5'])} |",
        f"| Brier / ECE | {number(clean['brier'])} / {number(clean['ece'])} | {number(noisy['brier'])} / {number(noisy['ece'])} |",
        f"| files / speakers | {clean['n_files']} / {clean['n_speakers']} | {noisy['n_files']} / {noisy['n_speakers']} |",
    ]
    if patients_unchanged:
        lines += ["", "The noisy test adds ward noise to controls only (`noisy_test.num_noise_patient: 0`), so its patients are the "
                  "clean test's: sensitivity is one figure, shown once. Every figure that counts controls can differ."]  # fmt: skip
    return "\n".join(lines) + "\n"


def audit(inputs: Inputs) -> str:
    figures = inputs.json("metrics/audit.json")

    def row(label: str, entry: dict) -> str:
        value = "one value everywhere" if entry["auroc"] is None else number(entry["auroc"])
        return f"| {label} | {value} | {'**flagged**' if entry['flagged'] else ''} |"

    lines = [
        f"{figures['files']} files; warning above {figures['warn_auroc']}.",
        "",
        "| property | cross-validated AUROC | |",
        "|---|---|---|",
        *(row(label, figures["properties"][key]) for key, label in AUDIT_LABELS if key in figures["properties"]),
        row("all together", figures["combined"]),
    ]
    return "\n".join(lines) + "\n"


def gate(inputs: Inputs) -> str:
    figures = inputs.json("metrics/gate.json")
    champion = "no champion (floors only)" if figures["champion"] is None else "against the champion"
    lines = [f"Gate decision of the committed run: **{figures['decision']}**, {champion}, floors on the "
             f"`{figures['config']['statistic']}` statistic.", "", "| rule | value | limit | outcome |", "|---|---|---|---|"]
    lines += [f"| {rule['explanation']} | {number(rule['value'])} | {rule['limit']} | {rule['outcome']} |" for rule in figures["rules"]]
    return "\n".join(lines) + "\n"


def model_size(inputs: Inputs) -> str:
    train = inputs.json("metrics/train.json")
    return f"The committed model has {train['parameters']:,} parameters (`metrics/train.json`).\n"


def benchmark(name: str) -> Callable[[Inputs], str]:
    def render(inputs: Inputs) -> str:
        results = inputs.optional_json(f"benchmarks/results/{name}.json")
        if results is None:
            return f"No figures recorded yet: they come from running `{BENCHMARKS[name]}` (writes `benchmarks/results/{name}.json`).\n"
        return (
            f"`{results['command']}` on {describe_machine(results['machine'])}:\n\n```\n" + "\n".join(results["lines"]) + "\n```\n"
        )

    return render


def comparison(name: str) -> Callable[[Inputs], str]:
    """A comparison's table (benchmarks/<name>.py prints it as markdown): demo_comparison, compare_models."""

    def render(inputs: Inputs) -> str:
        results = inputs.optional_json(f"benchmarks/results/{name}.json")
        if results is None:
            return f"No figures recorded yet: `python benchmarks/{name}.py --run` runs the entries (`benchmarks/results/{name}.json`).\n"
        return f"`{results['command']}` on {describe_machine(results['machine'])}:\n\n" + "\n".join(results["lines"]) + "\n"

    return render


def test_tiers(inputs: Inputs) -> str:
    results = inputs.optional_json("benchmarks/results/test_tiers.json")
    if results is None:
        return "No times recorded yet: `python benchmarks/test_tiers.py` times both tiers on a fresh clone (`benchmarks/results/test_tiers.json`).\n"
    return (
        f"On a fresh clone of commit {results['commit'][:7]} ({results['machine']}; `python benchmarks/test_tiers.py`): `make test-fast` runs {results['tests_fast']} tests in {results['fast_seconds'] / 60:.1f} min; "
        f"`make test` runs {results['tests_full']} tests in {results['full_seconds'] / 60:.1f} min.\n"
    )


RENDERERS: dict[str, Callable[[Inputs], str]] = {
    "headline": headline,
    "machine": machine,
    "split": split,
    "participants": participants,
    "test-metrics": test_metrics,
    "audit": audit,
    "gate": gate,
    "model-size": model_size,
    "test-tiers": test_tiers,
    "demo-comparison": comparison("demo_comparison"),
    "model-comparison": comparison("compare_models"),
    **{name.replace("_", "-"): benchmark(name) for name in BENCHMARKS},
}


def documents(root: Path) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def rewrite(text: str, inputs: Inputs, where: str) -> tuple[str, list[str]]:
    """The text with every block rendered afresh, and the names of the blocks whose content changed."""
    changed: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise DocsError(f"{where}: unknown generated block '{name}' (known: {', '.join(sorted(RENDERERS))})")
        body = RENDERERS[name](inputs)
        if body != match.group("body"):
            changed.append(name)
        return match.group("open") + body + match.group("close")

    return BLOCK.sub(replace, text), changed


def run(root: Path, check: bool) -> list[str]:
    """Rewrite (or, with check, only compare) every document; returns 'FILE: block' for each block that differs."""
    inputs, differing = Inputs(root), []
    for path in documents(root):
        relative = path.relative_to(root).as_posix()
        text = path.read_text()
        new, changed = rewrite(text, inputs, relative)
        differing += [f"{relative}: {name}" for name in changed]
        if changed and not check:
            path.write_text(new)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a block differs from what would be written")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        differing = run(args.root, args.check)
    except DocsError as error:
        print(f"make_docs: {error}", file=sys.stderr)
        return 1
    if args.check and differing:
        print("generated blocks differ from their inputs (run `make docs`):", *differing, sep="\n  ", file=sys.stderr)
        return 1
    for entry in differing:
        print(f"rewrote {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
