"""eval/report.md: one page a clinician can read, written by every evaluate run.

Flow of participants (files and speakers per class and split, quarantined
rows), the threshold and the rule and validation numbers that chose it, the
metric table with speaker-level intervals for the clean and noisy test sets,
calibration, subgroups, the shortcut audit and the figures: what TRIPOD+AI
and STARD ask a diagnostic-accuracy report to state. Counts and metrics only,
no identifiers.
"""

from __future__ import annotations

import math

import pandas as pd


METRIC_LABELS = {
    "auroc": "AUROC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "f1": "F1",
}


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _with_interval(metrics: dict, name: str) -> str:
    return f"{_number(metrics[name])} ({_number(metrics[f'{name}_ci_low'])}–{_number(metrics[f'{name}_ci_high'])})"


def participant_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Speakers and files per split and class."""
    rows = []
    for split, part in manifest.groupby("split", sort=False):
        for label, name in ((1, "patients"), (0, "controls")):
            cls = part[part["label"] == label]
            rows.append({"split": split, "class": name, "speakers": int(cls["speaker_id"].nunique()), "files": int(len(cls))})
    order = {"train": 0, "val": 1, "test": 2}
    return pd.DataFrame(rows).sort_values("split", key=lambda s: s.map(order), kind="stable")


# Metrics that read the patients alone: on a noisy test that adds noise to controls only,
# they are the clean test's by construction.
PATIENT_ONLY_METRICS = ("sensitivity",)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]


def render_report(
    counts: pd.DataFrame,
    quarantine: dict | None,
    decision: dict,
    test_metrics: dict,
    subgroups: dict,
    audit: dict | None,
    figures: list[str],
    noisy_patients_unchanged: bool = False,
) -> str:
    """The report; with `noisy_patients_unchanged` (noisy_test.num_noise_patient 0) the figures of
    PATIENT_ONLY_METRICS are shown once, for the clean test."""
    lines = ["# Evaluation report", "", "## Participants and recordings", ""]
    lines += _table(["split", "class", "speakers", "files"], [[r.split, r._2, str(r.speakers), str(r.files)] for r in counts.itertuples()])
    if quarantine is not None:
        dataset = quarantine.get("dataset", {})
        lines += ["", f"Rows read: {dataset.get('rows_in', 'n/a')}; accepted: {dataset.get('accepted', 'n/a')}; "
                  f"quarantined: {dataset.get('quarantined', 'n/a')} (by reason: {dataset.get('by_reason') or 'none'})."]
    lines += ["", "## Decision threshold", ""]
    if decision.get("validation_sensitivity") is None:
        lines.append(f"Fixed threshold {decision['threshold']} (`evaluate.threshold={decision['rule']}`), not chosen on data.")
    else:
        lines.append(
            f"Threshold {_number(decision['threshold'])}, chosen by the rule `{decision['rule']}` on {decision['validation_files']} validation "
            f"files ({', '.join(decision['validation_sets'])}): validation sensitivity "
            f"{_number(decision['validation_sensitivity'])}, specificity {_number(decision['validation_specificity'])}."
        )
    lines.append(f"Decisions per {decision['aggregate']}; calibration: {decision['calibration']}"
                 + (f" (temperature {_number(decision['temperature'])})." if decision.get("temperature") else "."))
    evaluated = {name: metrics for name, metrics in test_metrics.items() if "status" not in metrics}
    lines += ["", "## Test metrics at the chosen threshold (95% speaker-level bootstrap intervals)", ""]

    def shared(test_set: str, metric: str) -> bool:
        return noisy_patients_unchanged and test_set == "test_noisy" and "test_clean" in evaluated and metric in PATIENT_ONLY_METRICS

    def cell(test_set: str, metrics: dict, metric: str) -> str:
        return "= test_clean" if shared(test_set, metric) else _with_interval(metrics, metric)

    lines += _table(["metric", *evaluated], [[label, *(cell(test_set, m, name) for test_set, m in evaluated.items())] for name, label in METRIC_LABELS.items()])
    if any(shared(test_set, metric) for test_set in evaluated for metric in PATIENT_ONLY_METRICS):
        lines += ["", "The noisy test adds ward noise to controls only (`noisy_test.num_noise_patient: 0`): its patients are the clean "
                  f"test's, so {', '.join(PATIENT_ONLY_METRICS)} is one figure, shown once. Specificity, and every figure that "
                  "counts controls, can differ by construction."]  # fmt: skip

    def at_half(test_set: str, m: dict) -> str:
        parts = [f"accuracy {_number(m['accuracy_at_0.5'])}"]
        parts += [] if shared(test_set, "sensitivity") else [f"sensitivity {_number(m['sensitivity_at_0.5'])}"]
        return f"{test_set} " + ", ".join([*parts, f"specificity {_number(m['specificity_at_0.5'])}"])

    lines += ["", "At the conventional 0.5 instead: " + "; ".join(at_half(name, m) for name, m in evaluated.items()) + "."]
    for name, metrics in test_metrics.items():
        if "status" in metrics:
            lines += ["", f"**{name}: {metrics['status']}.**"]
    lines += ["", "## Calibration", ""]
    lines += _table(["test set", "files", "speakers", "Brier", "ECE"],
                    [[name, str(m["n_files"]), str(m["n_speakers"]), _number(m["brier"]), _number(m["ece"])] for name, m in evaluated.items()])
    lines += ["", "## Subgroups", ""]
    for test_set, groups in subgroups.items():
        rows = []
        for group, values in groups.items():
            for value, result in values.items():
                shown = [_with_interval(result, name) if name in result else "counts only" for name in ("accuracy", "sensitivity", "specificity", "auroc")]
                rows.append([group, value, str(result["n_files"]), str(result["n_speakers"]), f"{result['n_patients']}/{result['n_controls']}", *shown])
        lines += [f"**{test_set}**", ""]
        lines += _table(["subgroup", "value", "files", "speakers", "patients/controls", "accuracy", "sensitivity", "specificity", "AUROC"], rows)
        lines.append("")
    if audit is not None:
        lines += ["## Shortcut audit (before training)", "",
                  f"Cross-validated AUROC of predicting the label from each nuisance property alone; above {audit['warn_auroc']} it is flagged.", ""]
        rows = [[name, "one value everywhere" if result["auroc"] is None else _number(result["auroc"]), "**flagged**" if result["flagged"] else ""]
                for name, result in audit["properties"].items()]
        rows.append(["all together", _number(audit["combined"]["auroc"]), "**flagged**" if audit["combined"]["flagged"] else ""])
        lines += _table(["property", "AUROC", ""], rows)
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{figure}](figures/{figure})" for figure in figures] + [""]
    return "\n".join(lines).rstrip() + "\n"
