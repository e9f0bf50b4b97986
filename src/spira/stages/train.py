"""DVC stage train: fit the configured model with Lightning."""

from spira.stages._cli import stage_params
from spira.training.train import train

METRICS_PATH = "metrics/train.json"


def main() -> None:
    cfg = stage_params(__doc__)
    summary = train(cfg, METRICS_PATH)
    print(f"best checkpoint metrics: {summary}")


if __name__ == "__main__":
    main()
