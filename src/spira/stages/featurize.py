"""DVC stage featurize: MFCC over overlapping windows for every split and the noisy test set."""

from spira.pipeline.features import featurize_data
from spira.stages._cli import stage_params


def main() -> None:
    print(f"windows per split: {featurize_data(stage_params(__doc__, 'featurize'))}")


if __name__ == "__main__":
    main()
