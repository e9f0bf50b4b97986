"""The promotion gate's rules: absolute floors and non-inferiority to the champion.

Pure decisions on figures already computed; `spira.pipeline.gate` scores the
models and writes the result. Every rule is reported with its value and limit,
so the decision can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from spira.errors import UserError

# Floor name in conf/gate -> (test set, metric) of the challenger it bounds.
FLOOR_METRICS = {
    "test_auroc": ("test_clean", "auroc"),
    "test_sensitivity": ("test_clean", "sensitivity"),
    "test_specificity": ("test_clean", "specificity"),
    "noisy_test_auroc": ("test_noisy", "auroc"),
}
# The classes whose test speakers a metric's figure rests on.
METRIC_CLASSES = {"auroc": ("patients", "controls"), "sensitivity": ("patients",), "specificity": ("controls",)}
# What a floor is applied to: the point estimate, or the lower bound of its speaker bootstrap interval.
STATISTICS = {"point": "", "lower": "_ci_low"}
PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient evidence"


class GateRuleError(UserError, ValueError):
    """A gate setting no rule knows."""


@dataclass(frozen=True)
class GateSettings:
    """The `gate` config group as plain values."""

    floors: dict[str, float]  # floor name (FLOOR_METRICS) -> the lowest figure that passes
    artifact: str  # the registered model's name in dvc.yaml's `artifacts:`
    margin: float  # non-inferiority: how much lower the challenger's AUROC may be
    confidence: float  # of the paired and the per-metric bootstrap intervals
    resamples: int
    seed: int
    statistic: str = "lower"  # point | lower: what each floor is applied to
    min_speakers_per_class: int = 5  # fewer test speakers of a class a floor reads: insufficient evidence

    def __post_init__(self):
        unknown = sorted(set(self.floors) - set(FLOOR_METRICS))
        if unknown:
            raise GateRuleError(f"gate.floors.{unknown[0]}: unknown floor; known: {', '.join(FLOOR_METRICS)}")
        if self.statistic not in STATISTICS:
            raise GateRuleError(f"gate.statistic: {self.statistic!r} is not one of {', '.join(STATISTICS)}")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    value: float | None
    limit: float
    passed: bool
    explanation: str
    outcome: str = ""  # pass | fail | insufficient evidence (set from `passed` when not given)

    def __post_init__(self):
        if not self.outcome:
            object.__setattr__(self, "outcome", PASS if self.passed else FAIL)


def floor_rules(
    challenger: Mapping[str, Mapping[str, float]], floors: Mapping[str, float], statistic: str = "point", min_speakers_per_class: int = 0
) -> list[RuleResult]:
    """Each floor against the challenger's figure: its point estimate or the lower bound of its interval
    (`statistic`); a missing or NaN figure fails. A floor whose figure rests on fewer than
    `min_speakers_per_class` test speakers of a class it reads (`n_<class>_speakers`) is not
    decided: its outcome is insufficient evidence, and the message says how many are needed."""
    results = []
    for name, limit in floors.items():
        if name not in FLOOR_METRICS:
            raise GateRuleError(f"gate.floors.{name}: unknown floor; known: {', '.join(FLOOR_METRICS)}")
        test_set, metric = FLOOR_METRICS[name]
        figures = challenger[test_set]
        value = figures.get(metric + STATISTICS[statistic])
        shown = metric if statistic == "point" else f"{metric} (lower bound of its interval)"
        explanation = f"challenger {test_set} {shown} >= {float(limit):g}"
        short = {cls: figures.get(f"n_{cls}_speakers", 0) for cls in METRIC_CLASSES[metric] if figures.get(f"n_{cls}_speakers", 0) < min_speakers_per_class}
        if short and figures.get("n_files", 0):
            counts = ", ".join(f"{n} {cls}" for cls, n in short.items())
            explanation += (f"; not decided: {test_set} has {counts} speaker(s), and a floor on {metric} needs at least "
                            f"{min_speakers_per_class} of each (gate.min_speakers_per_class)")  # fmt: skip
            results.append(RuleResult(f"floor {name}", value, float(limit), False, explanation, INSUFFICIENT))
            continue
        passed = value is not None and value == value and value >= float(limit)
        results.append(RuleResult(f"floor {name}", value, float(limit), passed, explanation))
    return results


def non_inferiority_rule(ci_low: float, margin: float, confidence: float) -> RuleResult:
    """The lower bound of the interval of AUROC(challenger) - AUROC(champion) above -margin."""
    return RuleResult(
        "non-inferiority", ci_low, -float(margin), ci_low > -float(margin),
        f"lower bound of the {confidence:.0%} paired speaker bootstrap interval of "
        f"AUROC(challenger) - AUROC(champion) > -{float(margin):g}",
    )  # fmt: skip


def decide(rules: list[RuleResult]) -> dict:
    """pass when every rule passes; fail when one fails; else insufficient evidence (a rule the test
    set is too small to decide). The failed and the undecided rules by name."""
    failed = [rule.rule for rule in rules if rule.outcome == FAIL]
    undecided = [rule.rule for rule in rules if rule.outcome == INSUFFICIENT]
    decision = FAIL if failed else INSUFFICIENT if undecided else PASS
    return {"decision": decision, "failed_rules": failed, "undecided_rules": undecided, "rules": [asdict(rule) for rule in rules]}


def format_value(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def gate_markdown(result: dict) -> str:
    """reports/gate.md: the decision, the rules and both models' figures, readable without code."""
    challenger, champion = result["challenger"], result["champion"]
    lines = [
        f"# Promotion gate: {result['decision'].upper()}",
        "",
        f"Challenger: this run (data version `{str(challenger['data_version'])[:12]}`). "
        + (f"Champion: `{champion['version']}`, the model in service (`prod`)." if champion else "No champion yet: floors only."),
        f"Decision threshold: a recording is called *patient* when the model's probability is >= {result['threshold']:g}.",
        "",
        "| rule | value | limit | result |",
        "|---|---|---|---|",
    ]
    for rule in result["rules"]:
        outcome = rule.get("outcome", PASS if rule["passed"] else FAIL)
        shown = {PASS: "pass", FAIL: "**FAIL**", INSUFFICIENT: "**insufficient evidence**"}[outcome]
        lines.append(f"| {rule['explanation']} | {format_value(rule['value'])} | {rule['limit']:g} | {shown} |")
    lines += ["", "| test set | figure | challenger | champion |", "|---|---|---|---|"]
    for test_set in ("test_clean", "test_noisy"):
        for metric in ("auroc", "sensitivity", "specificity", "balanced_accuracy", "n_files"):
            theirs = format_value(champion[test_set].get(metric)) if champion else "-"
            lines.append(f"| {test_set} | {metric} | {format_value(challenger[test_set].get(metric))} | {theirs} |")
    if result["non_inferiority"]:
        ni = result["non_inferiority"]
        lines += [
            "",
            f"AUROC difference (challenger - champion) on the clean test set: {ni['difference']:+.3f}, "
            f"{ni['confidence']:.0%} interval [{ni['ci_low']:+.3f}, {ni['ci_high']:+.3f}] "
            f"({ni['resamples_used']} of {ni['resamples']} speaker resamples of {ni['speakers']} speakers).",
        ]
    lines += ["", "The gate changes no tags: `spira promote` registers and assigns `prod` when this says PASS."]
    return "\n".join(lines) + "\n"
