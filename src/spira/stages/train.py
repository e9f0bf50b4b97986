"""DVC stage train: fit the configured model with Lightning (metrics/train.json, checkpoints)."""

import sys

from spira.augment.pipeline import NoNoiseError
from spira.pipeline.model import fit_model
from spira.safety import output_errors_exit
from spira.stages._cli import stage_params


def main() -> None:
    try:
        with output_errors_exit():
            summary = fit_model(stage_params(__doc__, "train"))
    except NoNoiseError as error:
        sys.exit(f"error: {error}")
    if summary:
        print(f"best checkpoint metrics: {summary}")


if __name__ == "__main__":
    main()
