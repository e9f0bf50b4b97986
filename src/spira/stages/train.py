"""DVC stage train: fit the configured model with Lightning (metrics/train.json, checkpoints)."""

from spira.pipeline.model import fit_model
from spira.stages._cli import stage_params


def main() -> None:
    summary = fit_model(stage_params(__doc__, "train"))
    if summary:
        print(f"best checkpoint metrics: {summary}")


if __name__ == "__main__":
    main()
