"""DVC stage prepare: decode, resample, normalise and split the dataset by speaker."""

from pathlib import Path

from spira.data.prepare import SUMMARY_FILE, prepare_dataset
from spira.stages._cli import stage_params


def main() -> None:
    cfg = stage_params(__doc__)
    prepare_dataset(cfg.data)
    print((Path(cfg.data.out_dir) / SUMMARY_FILE).read_text())


if __name__ == "__main__":
    main()
