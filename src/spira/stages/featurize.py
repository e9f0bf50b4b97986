"""DVC stage featurize: MFCC over overlapping windows for every split and the noisy test set."""

from spira.features.featurize import featurize
from spira.stages._cli import stage_params


def main() -> None:
    cfg = stage_params(__doc__)
    counts = featurize(cfg.features, cfg.data.out_dir, cfg.noisy_test)
    print(f"windows per split: {counts}")


if __name__ == "__main__":
    main()
