"""DVC stage evaluate: per-file metrics on the clean and noisy test sets, plots and predictions."""

import json

from spira.errors import exit_on_user_error
from spira.pipeline.model import evaluate_model
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        metrics = evaluate_model(stage_params(__doc__, "evaluate"))
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
