"""Loading the pipeline configuration.

`conf/` is the single source of truth; `params.yaml` is its composed, resolved
form that DVC tracks and every stage reads. `compose_params` composes it the
same way `dvc exp run` does (DVC's own compose-and-dump), so `make params`,
`dvc exp run` and the tests all agree byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from spira.errors import UsageError, UserError

CONFIG_NAME = "config"
PROJECT_ENV = "SPIRA_PROJECT"
# The config group whose options are the supported (model, features) pairs, `<model>_<features>`.
PAIRS_GROUP = "model_features"


class UnsupportedPairError(UsageError):
    """model=... and features=... that no file of conf/model_features/ allows."""


def pair_of(option: str) -> tuple[str, str]:
    """(model, features) of a model_features option `<model>_<features>` (features names hold no underscore)."""
    model, features = option.rsplit("_", 1)
    return model, features


def supported_pairs(config_dir: Path) -> list[tuple[str, str]]:
    """(model, features) of every conf/model_features/<model>_<features>.yaml."""
    return sorted(pair_of(path.stem) for path in (config_dir / PAIRS_GROUP).glob("*.yaml"))


def pair_error(config_dir: Path, model: str, features: str) -> UnsupportedPairError:
    allowed = ", ".join(f"model={m} features={f}" for m, f in supported_pairs(config_dir))
    return UnsupportedPairError(f"model={model} does not read features={features}; supported pairs: {allowed}")


class NoProjectError(UserError):
    """No SPIRA project (dvc.yaml and conf/) where a command needs one."""


def is_project(folder: Path) -> bool:
    return (folder / "dvc.yaml").is_file() and (folder / "conf").is_dir()


def find_project(start: Path | None = None) -> Path:
    """The project root: $SPIRA_PROJECT if set, else the nearest folder at or above
    `start` (the working directory) holding dvc.yaml and conf/. Works the same for an
    editable and an installed package, since the configs belong to the project."""
    pinned = os.environ.get(PROJECT_ENV)
    if pinned:
        root = Path(pinned).resolve()
        if not is_project(root):
            raise NoProjectError(f"{PROJECT_ENV}={root}: no SPIRA project (dvc.yaml and conf/) there")
        return root
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_project(folder):
            return folder
    raise NoProjectError(
        f"no SPIRA project (dvc.yaml and conf/) at or above {start}; run inside a project or set {PROJECT_ENV}"
    )


def project_config_dir(start: Path | None = None) -> Path:
    """`<project>/conf`, the configuration every command composes."""
    return find_project(start) / "conf"


def compose_config(overrides: list[str] | None = None, config_dir: Path | None = None) -> DictConfig:
    """Compose conf/ with Hydra overrides and resolve every interpolation."""
    from hydra import compose, initialize_config_dir

    config_dir = config_dir or project_config_dir()

    from hydra.errors import MissingConfigException

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        try:
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides or [])
        except MissingConfigException as error:
            # The missing option is the pair the defaults list looked up, whichever override (a model,
            # a features or an experiment option) chose it.
            missing = error.missing_cfg_file or ""
            if missing.startswith(f"{PAIRS_GROUP}/"):
                raise pair_error(config_dir, *pair_of(missing.removeprefix(f"{PAIRS_GROUP}/"))) from None
            raise
    OmegaConf.resolve(cfg)
    return cfg


def compose_params(output: Path, overrides: list[str] | None = None, config_dir: Path | None = None) -> None:
    """Write params.yaml exactly as `dvc exp run` would with hydra.enabled."""
    config_dir = config_dir or project_config_dir()
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


def declared_params(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The params keys dvc.yaml declares for `stage` (dotted, from params.yaml)."""
    dvc_yaml = Path(dvc_yaml)
    if not dvc_yaml.is_file():
        raise FileNotFoundError(f"{dvc_yaml}: no pipeline file; run the stage from the repository root")
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    if stage not in stages:
        raise KeyError(f"{dvc_yaml}: no stage {stage!r}")
    keys = stages[stage].get("params", [])
    if not all(isinstance(key, str) for key in keys):
        raise ValueError(f"{dvc_yaml}: stage {stage!r} reads params from another file than params.yaml; declare keys only")
    return keys


def restrict_params(cfg: DictConfig, keys: list[str]) -> DictConfig:
    """Only the dotted `keys` of cfg, read-only and closed: a stage that reads a
    key it did not declare in dvc.yaml fails (ConfigAttributeError) instead of
    running on a value DVC does not track."""
    view, absent = OmegaConf.create({}), object()
    for key in keys:
        value = OmegaConf.select(cfg, key, default=absent)
        if value is absent:
            raise KeyError(f"params key {key!r} is declared in dvc.yaml but absent from the params")
        OmegaConf.update(view, key, value, force_add=True)
    OmegaConf.set_struct(view, True)
    OmegaConf.set_readonly(view, True)
    return view


def hydra_config_path() -> str | None:
    """The Hydra entry's config_path: the project's conf/ as an absolute path, found
    from the working directory; None outside a project so importing the entry never
    fails (Hydra then asks for --config-dir)."""
    try:
        return str(project_config_dir())
    except NoProjectError:
        return None
