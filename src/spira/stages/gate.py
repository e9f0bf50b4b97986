"""DVC stage gate: score this run's model and the `prod` model on the same test sets and decide (no tag changes)."""

import sys

from spira.pipeline.gate import run_gate
from spira.registry.versions import RegistryError
from spira.stages._cli import stage_params


def main() -> None:
    try:
        result = run_gate(stage_params(__doc__, "gate"))
    except RegistryError as error:
        sys.exit(str(error))
    failed = f" (failed: {', '.join(result['failed_rules'])})" if result["failed_rules"] else ""
    print(f"gate: {result['decision']}{failed}; see reports/gate.md")


if __name__ == "__main__":
    main()
