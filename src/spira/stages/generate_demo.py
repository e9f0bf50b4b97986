"""DVC stage generate_demo: write the seeded synthetic SPIRA-layout cohort."""

from pathlib import Path

from omegaconf import OmegaConf

from spira.data.demo import DemoCohortConfig, generate_demo_cohort
from spira.stages._cli import stage_params


def main() -> None:
    cfg = stage_params(__doc__)
    options = OmegaConf.to_container(cfg.demo_cohort, resolve=True)
    out_dir = Path(options.pop("out_dir"))
    summary = generate_demo_cohort(out_dir, DemoCohortConfig(**options))
    print(f"demo cohort written to {out_dir}: {summary}")


if __name__ == "__main__":
    main()
