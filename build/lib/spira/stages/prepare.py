"""DVC stage prepare: validate, decode, resample, normalise and split the dataset by speaker."""

from spira.data.manifest import SUMMARY_FILE
from spira.errors import exit_on_user_error
from spira.layout import PIPELINE
from spira.pipeline.data import prepare_data
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        prepare_data(stage_params(__doc__, "prepare"))
    print((PIPELINE.prepared / SUMMARY_FILE).read_text())


if __name__ == "__main__":
    main()
