"""DVC stage audit: can the label be predicted from nuisance properties alone? (metrics/audit.json)"""

import json

from spira.errors import exit_on_user_error
from spira.pipeline.audit import audit_data
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        result = audit_data(stage_params(__doc__, "audit"))
    print(json.dumps({"combined": result["combined"], "flagged": result["flagged"]}, indent=2))


if __name__ == "__main__":
    main()
