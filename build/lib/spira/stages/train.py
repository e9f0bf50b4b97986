"""DVC stage train: fit the configured model with Lightning (metrics/train.json, checkpoints)."""

from spira.errors import exit_on_user_error
from spira.pipeline.model import fit_model
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        summary = fit_model(stage_params(__doc__, "train"))
    if summary:
        print(f"best checkpoint metrics: {summary}")


if __name__ == "__main__":
    main()
