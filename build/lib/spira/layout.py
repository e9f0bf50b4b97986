"""Where the pipeline writes: fixed paths the pipeline owns, never parameters.

DVC removes a stage's declared outputs before the stage starts, and `dvc exp
run -S` does so before any of the project's code could check a path. So no
output path comes from a parameter: `dvc.yaml` declares exactly these paths,
the stages write exactly there, and a parameter can only point at inputs (the
recordings, `data.root` and `data.noise_root`), which are dependencies and never
deleted. `check_inputs` refuses recordings that lie inside one of these paths.

A Hydra run (`python -m spira.experiment`) reads the same prepared data and features
and writes its checkpoints into its own run folder (`Layout.for_run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from spira.errors import UserError


class UnsafeParamsError(UserError, ValueError):
    """Params that put recordings inside a folder the pipeline owns (DVC deletes it before a stage runs), or move an output."""


@dataclass(frozen=True)
class Layout:
    """The pipeline's folders and files, relative to the repository root."""

    demo: Path = Path("data/demo")
    prepared: Path = Path("data/prepared")
    quarantine: Path = Path("data/quarantine")
    features: Path = Path("data/features")
    checkpoints: Path = Path("models/checkpoints")
    # Checkpoints while training, outside DVC's outputs: a killed train resumes from here.
    resume: Path = Path("models/resume")
    export: Path = Path("models/export")
    audit: Path = Path("metrics/audit.json")

    def for_run(self, run_dir: Path, repo_root: Path) -> Layout:
        """A Hydra run's layout: the repository's data and features (absolute), its own checkpoints."""
        return replace(
            self,
            prepared=repo_root / self.prepared,
            quarantine=repo_root / self.quarantine,
            features=repo_root / self.features,
            audit=repo_root / self.audit,
            checkpoints=run_dir / "checkpoints",
            resume=run_dir / "resume",
        )


# The DVC pipeline's outputs, as dvc.yaml declares them (tests/test_layout.py holds the two together).
PIPELINE = Layout()

# Every output the DVC stages declare: folders DVC deletes before a stage runs, and so
# places no recording may live. The demo cohort is generated, so it is one of them.
OWNED_OUTPUTS: tuple[Path, ...] = (
    PIPELINE.demo,
    PIPELINE.prepared,
    PIPELINE.quarantine,
    PIPELINE.features,
    PIPELINE.checkpoints,
    PIPELINE.resume,
    PIPELINE.export,
    Path("eval"),
    Path("metrics"),
    Path("reports"),
)

# The parameters that name recordings (keys of `data`): inputs only.
INPUT_KEYS = ("root", "noise_root")


def check_inputs(inputs: dict[str, str], repo_root: Path = Path("."), generated: tuple[Path, ...] = (PIPELINE.demo,)) -> None:
    """Raise UnsafeParamsError when an input folder (config key -> path) equals, lies inside
    or contains an output the pipeline owns: DVC would delete the recordings with the output.

    `generated` outputs (the demo cohort) may be read as inputs: the pipeline wrote them."""
    root = repo_root.resolve()
    for key, value in inputs.items():
        folder = (root / str(value)).resolve()
        for output in OWNED_OUTPUTS:
            owned = (root / output).resolve()
            if folder == owned and output in generated:
                continue
            if folder == owned or owned in folder.parents or folder in owned.parents:
                raise UnsafeParamsError(
                    f"{key}={value}: the recordings overlap {output}, a folder the pipeline writes (DVC deletes it before a stage runs); "
                    f"keep recordings outside {', '.join(str(path) for path in OWNED_OUTPUTS)}. Nothing was run"
                )


# Parameters that named outputs before the paths were fixed; `+data.out_dir=...` still composes,
# so a stage refuses them rather than ignore them.
FORMER_OUTPUT_KEYS = {
    "demo_cohort.out_dir": PIPELINE.demo,
    "data.out_dir": PIPELINE.prepared,
    "data.report_dir": PIPELINE.quarantine,
    "features.out_dir": PIPELINE.features,
    "callbacks.model_checkpoint.dirpath": PIPELINE.checkpoints,
    "callbacks.last_checkpoint.dirpath": PIPELINE.checkpoints,
    "train.resume_dir": PIPELINE.resume,
    "export.out_dir": PIPELINE.export,
    "audit.output": PIPELINE.audit,
}


def select(params: Mapping, dotted: str) -> object | None:
    """params[a][b] for "a.b", or None."""
    node: object = params
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def check_params(params: Mapping) -> None:
    """Composed params that would put recordings where the pipeline writes, or that try to move an
    output: UnsafeParamsError, one line naming the key."""
    for key, path in FORMER_OUTPUT_KEYS.items():
        if select(params, key) is not None:
            raise UnsafeParamsError(f"{key} is no parameter: the pipeline writes {path}, a fixed path (spira.layout). Remove the override. Nothing was run")
    check_inputs({f"data.{key}": select(params, f"data.{key}") for key in INPUT_KEYS if select(params, f"data.{key}") is not None})
