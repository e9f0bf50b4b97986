"""Loading the pipeline configuration.

`conf/` is the single source of truth; `params.yaml` is its composed, resolved
form that DVC tracks and every stage reads. `compose_params` composes it the
same way `dvc exp run` does (DVC's own compose-and-dump), so `make params`,
`dvc exp run` and the tests all agree byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "conf"
CONFIG_NAME = "config"


def compose_config(overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> DictConfig:
    """Compose conf/ with Hydra overrides and resolve every interpolation."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=overrides or [])
    OmegaConf.resolve(cfg)
    return cfg


def compose_params(output: Path, overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> None:
    """Write params.yaml exactly as `dvc exp run` would with hydra.enabled."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(output, str(config_dir), None, CONFIG_NAME, str(config_dir.parent), overrides or [])


def load_params(path: str | Path = "params.yaml") -> DictConfig:
    """Read the composed parameters a DVC stage runs with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no composed parameters. Run `make params` (or `dvc exp run`) to compose them from conf/."
        )
    return OmegaConf.load(path)
