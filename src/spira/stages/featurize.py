"""DVC stage featurize: MFCC over overlapping windows for every split and the noisy test set."""

import sys

from spira.augment.pipeline import NoNoiseError
from spira.pipeline.features import featurize_data
from spira.safety import output_errors_exit
from spira.stages._cli import stage_params


def main() -> None:
    try:
        with output_errors_exit():
            windows = featurize_data(stage_params(__doc__, "featurize"))
    except NoNoiseError as error:
        sys.exit(f"error: {error}")
    print(f"windows per split: {windows}")


if __name__ == "__main__":
    main()
