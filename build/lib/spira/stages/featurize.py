"""DVC stage featurize: MFCC over overlapping windows for every split and the noisy test set."""

from spira.errors import exit_on_user_error
from spira.pipeline.features import featurize_data
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        windows = featurize_data(stage_params(__doc__, "featurize"))
    print(f"windows per split: {windows}")


if __name__ == "__main__":
    main()
