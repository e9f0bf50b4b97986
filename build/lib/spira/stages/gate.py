"""DVC stage gate: score this run's model and the `prod` model on the same test sets and decide (no tag changes)."""

from spira.errors import exit_on_user_error
from spira.pipeline.gate import run_gate
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        result = run_gate(stage_params(__doc__, "gate"))
    failed = f" (failed: {', '.join(result['failed_rules'])})" if result["failed_rules"] else ""
    print(f"gate: {result['decision']}{failed}; see reports/gate.md")


if __name__ == "__main__":
    main()
