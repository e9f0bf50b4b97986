"""DVC stage audit: can the label be predicted from nuisance properties alone? (metrics/audit.json)"""

import json

from spira.pipeline.audit import audit_data
from spira.safety import output_errors_exit
from spira.stages._cli import stage_params


def main() -> None:
    with output_errors_exit():
        result = audit_data(stage_params(__doc__, "audit"))
    print(json.dumps({"combined": result["combined"], "flagged": result["flagged"]}, indent=2))


if __name__ == "__main__":
    main()
