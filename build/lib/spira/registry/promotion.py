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
    "noisy_test_auroc": ("test_noisy", "auroc"),
}


class GateRuleError(UserError, ValueError):
    """A gate setting no rule knows."""


@dataclass(frozen=True)
class GateSettings:
    """The `gate` config group as plain values."""

    floors: dict[str, float]  # floor name (FLOOR_METRICS) -> the lowest figure that passes
    artifact: str  # the registered model's name in dvc.yaml's `artifacts:`
    margin: float  # non-inferiority: how much lower the challenger's AUROC may be
    confidence: float  # of the paired bootstrap interval
    resamples: int
    seed: int

    def __post_init__(self):
        unknown = sorted(set(self.floors) - set(FLOOR_METRICS))
        if unknown:
            raise GateRuleError(f"gate.floors.{unknown[0]}: unknown floor; known: {', '.join(FLOOR_METRICS)}")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    value: float | None
    limit: float
    passed: bool
    explanation: str


def floor_rules(challenger: Mapping[str, Mapping[str, float]], floors: Mapping[str, float]) -> list[RuleResult]:
    """The challenger's figure >= each floor (a missing or NaN figure fails its floor)."""
    results = []
    for name, limit in floors.items():
        if name not in FLOOR_METRICS:
            raise GateRuleError(f"gate.floors.{name}: unknown floor; known: {', '.join(FLOOR_METRICS)}")
        test_set, metric = FLOOR_METRICS[name]
        value = challenger[test_set].get(metric)
        passed = value is not None and value == value and value >= float(limit)
        results.append(RuleResult(f"floor {name}", value, float(limit), passed, f"challenger {test_set} {metric} >= {float(limit):g}"))
    return results


def non_inferiority_rule(ci_low: float, margin: float, confidence: float) -> RuleResult:
    """The lower bound of the interval of AUROC(challenger) - AUROC(champion) above -margin."""
    return RuleResult(
        "non-inferiority", ci_low, -float(margin), ci_low > -float(margin),
        f"lower bound of the {confidence:.0%} paired speaker bootstrap interval of "
        f"AUROC(challenger) - AUROC(champion) > -{float(margin):g}",
    )  # fmt: skip


def decide(rules: list[RuleResult]) -> dict:
    """pass when every rule passes; the failed rules by name."""
    failed = [rule.rule for rule in rules if not rule.passed]
    return {"decision": "fail" if failed else "pass", "failed_rules": failed, "rules": [asdict(rule) for rule in rules]}


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
        lines.append(f"| {rule['explanation']} | {format_value(rule['value'])} | {rule['limit']:g} | {'pass' if rule['passed'] else '**FAIL**'} |")
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
