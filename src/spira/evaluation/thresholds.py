"""The decision threshold, chosen on validation predictions by a named rule.

`evaluate.threshold` is a number (used as is) or a rule applied to the
validation predictions of the selected checkpoint:

- `youden`: the highest sensitivity + specificity - 1;
- `sensitivity:0.90`: the highest specificity with sensitivity >= 0.90;
- `specificity:0.90`: the highest sensitivity with specificity >= 0.90.

Candidates are the midpoints between consecutive distinct validation scores
(and one below the lowest, one above the highest), so the threshold sits in
the gap between two validation files rather than on one of them. Ties go to
the candidate nearest 0.5: no rule pushes the threshold further than the
validation data asks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spira.errors import UserError

RULES = ("youden", "sensitivity", "specificity")


class EvaluationError(UserError, ValueError):
    """Evaluation settings or data that cannot be evaluated, or a decision record export and the gate cannot use."""


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold, the rule that chose it and the validation numbers behind it."""

    rule: str
    threshold: float
    validation_sensitivity: float | None = None
    validation_specificity: float | None = None
    validation_files: int = 0

    def record(self) -> dict:
        return {
            "rule": self.rule,
            "threshold": round(self.threshold, 6),
            "validation_sensitivity": None if self.validation_sensitivity is None else round(self.validation_sensitivity, 6),
            "validation_specificity": None if self.validation_specificity is None else round(self.validation_specificity, 6),
            "validation_files": self.validation_files,
        }


def parse_rule(rule: str | float) -> tuple[str, float]:
    """`0.4` -> ("fixed", 0.4); `youden` -> ("youden", nan); `sensitivity:0.9` -> ("sensitivity", 0.9)."""
    try:
        value = float(rule)
    except (TypeError, ValueError):
        pass
    else:
        if not 0.0 <= value <= 1.0:
            raise EvaluationError(f"evaluate.threshold={rule}: a fixed threshold must lie in [0, 1]")
        return "fixed", value
    name, _, target = str(rule).partition(":")
    if name not in RULES or (name == "youden") != (target == ""):
        raise EvaluationError(f"evaluate.threshold={rule}: expected a number, youden, sensitivity:<0-1> or specificity:<0-1>")
    if name == "youden":
        return name, float("nan")
    try:
        value = float(target)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise EvaluationError(f"evaluate.threshold={rule}: the target after '{name}:' must be a number in (0, 1]")
    return name, value


def choose_threshold(rule: str | float, labels: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    """Apply `rule` to validation labels (1 = patient) and scores (decision: score >= threshold)."""
    name, target = parse_rule(rule)
    if name == "fixed":
        return ThresholdChoice(rule=str(rule), threshold=target)
    labels, scores = np.asarray(labels).astype(np.int64), np.asarray(scores, dtype=np.float64)
    if not (labels == 1).any() or not (labels == 0).any():
        raise EvaluationError(f"evaluate.threshold={rule} needs validation files of both classes")
    distinct = np.unique(scores)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[1:] + distinct[:-1]) / 2, [distinct[-1] + 1e-6]])
    called = scores[None, :] >= candidates[:, None]
    sensitivity = called[:, labels == 1].mean(axis=1)
    specificity = 1 - called[:, labels == 0].mean(axis=1)
    if name == "youden":
        score, allowed = sensitivity + specificity, np.ones_like(sensitivity, dtype=bool)
    elif name == "sensitivity":
        score, allowed = specificity + 1e-9 * sensitivity, sensitivity >= target - 1e-12
    else:
        score, allowed = sensitivity + 1e-9 * specificity, specificity >= target - 1e-12
    score = np.where(allowed, score, -np.inf)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    chosen = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return ThresholdChoice(
        rule=str(rule),
        threshold=float(candidates[chosen]),
        validation_sensitivity=float(sensitivity[chosen]),
        validation_specificity=float(specificity[chosen]),
        validation_files=int(labels.size),
    )


def read_decision(test_metrics: Path) -> dict:
    """The decision rule evaluate applied (the "threshold" record of its test metrics: the threshold,
    its rule and the validation figures that chose it), for the steps that judge or ship the model.

    Export and gate take the threshold (and the temperature of a calibrated evaluation)
    from here, so the model in service decides exactly as it was evaluated."""
    test_metrics = Path(test_metrics)
    if not test_metrics.is_file():
        raise EvaluationError(f"{test_metrics}: no evaluation yet; run `dvc repro evaluate` first")
    decision = json.loads(test_metrics.read_text())["threshold"]
    return decision


def describe_decision(decision: dict) -> str:
    """How the threshold of a decision record was chosen, in one sentence (the model contract's threshold_rule)."""
    if decision.get("validation_sensitivity") is None:
        return f"fixed in the config (evaluate.threshold={decision['rule']}), not tuned on data"
    return (
        f"chosen by the rule {decision['rule']} on {decision['validation_files']} validation {decision['aggregate']}s "
        f"({', '.join(decision['validation_sets'])}): validation sensitivity {decision['validation_sensitivity']}, "
        f"specificity {decision['validation_specificity']}"
    )
