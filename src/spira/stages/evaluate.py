"""DVC stage evaluate: per-file metrics on the test split, plots and predictions."""

import json
from pathlib import Path

from spira.evaluation.evaluate import evaluate
from spira.stages._cli import stage_params
from spira.tracking import log_evaluation_run, uses_wandb

CHECKPOINT = "models/checkpoints/best.ckpt"
METRICS_PATH = Path("metrics/test.json")
REPORT_DIR = "eval"


def main() -> None:
    cfg = stage_params(__doc__)
    metrics = evaluate(CHECKPOINT, cfg.features.out_dir, float(cfg.evaluate.threshold), int(cfg.evaluate.batch_size), REPORT_DIR)
    METRICS_PATH.parent.mkdir(parents=True, exist_ok=True)
    METRICS_PATH.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    if uses_wandb(cfg):
        log_evaluation_run(cfg, metrics, REPORT_DIR)


if __name__ == "__main__":
    main()
