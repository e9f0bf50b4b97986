"""DVC stage prepare: validate, decode, resample, normalise and split the dataset by speaker."""

import sys

from spira.data.manifest import SUMMARY_FILE
from spira.data.privacy import MissingSaltError
from spira.data.rows import PrepareError
from spira.layout import PIPELINE
from spira.pipeline.data import prepare_data
from spira.safety import UnsafeOutputError, output_errors_exit
from spira.stages._cli import stage_params


def main() -> None:
    cfg = stage_params(__doc__, "prepare")
    try:
        with output_errors_exit():
            prepare_data(cfg)
    except (PrepareError, MissingSaltError, UnsafeOutputError) as error:
        print(f"\n{error}", file=sys.stderr)
        sys.exit(1)
    print((PIPELINE.prepared / SUMMARY_FILE).read_text())


if __name__ == "__main__":
    main()
