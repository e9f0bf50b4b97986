"""Model versions and stages as git tags, written by GTO, read back from git.

A version is the annotated tag `<name>@vN.0.0` on the commit whose pipeline
produced the model; its message is a JSON record (commit, data version,
changed params, test metrics, threshold, gate decision or forced reason).
The model in service is the stage `prod`: each assignment is a tag
`<name>#prod#N`, the highest N wins, so `git tag` is the audit trail.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from spira.errors import UserError

PROD = "prod"


class RegistryError(UserError):
    """A registry call that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    tag: str
    commit: str
    created: str
    record: dict


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise RegistryError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def _tags(repo: Path, pattern: str) -> list[tuple[str, str, str, str]]:
    """(tag, commit, creation date, message) of the annotated tags matching pattern."""
    form = "%(refname:strip=2)%00%(*objectname)%00%(creatordate:iso-strict)%00%(contents)%01"
    rows = git(repo, "for-each-ref", f"--format={form}", f"refs/tags/{pattern}").split("\x01")
    return [tuple(row.strip("\n").split("\x00", 3)) for row in rows if row.strip("\n")]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split("."))


def read_record(message: str) -> dict:
    try:
        return json.loads(message)
    except json.JSONDecodeError:
        return {"message": message.strip()}


def versions(repo: Path, name: str) -> list[ModelVersion]:
    """Every registered version, oldest first."""
    found = [
        ModelVersion(tag.split("@", 1)[1], tag, commit, created, read_record(message))
        for tag, commit, created, message in _tags(repo, f"{name}@v*")
    ]
    return sorted(found, key=lambda v: _version_key(v.version))


def prod_assignments(repo: Path, name: str) -> list[tuple[int, str, str, str]]:
    """(N, version, date, message) of every `prod` assignment, in order."""
    by_commit = {v.commit: v.version for v in versions(repo, name)}
    rows = [(int(tag.rsplit("#", 1)[1]), by_commit.get(commit, "?"), created, message.strip())
            for tag, commit, created, message in _tags(repo, f"{name}#{PROD}#*")]  # fmt: skip
    return sorted(rows)


def current_prod(repo: Path, name: str) -> ModelVersion | None:
    """The version of the latest `prod` assignment (the highest N), or None.

    Read from the tags rather than `gto.api.find_versions_in_stage`: GTO keeps
    every version ever assigned in the stage and answers the highest of them,
    so after a rollback it would still name the version rolled back from."""
    assignments = prod_assignments(repo, name)
    if not assignments:
        return None
    return next(v for v in versions(repo, name) if v.version == assignments[-1][1])


def find_version(repo: Path, name: str, reference: str) -> ModelVersion:
    """The version `reference` names: `prod` (the latest assignment) or `vN.N.N`."""
    if reference == PROD:
        prod = current_prod(repo, name)
        if prod is None:
            raise RegistryError(f"no version of {name} is in prod in {repo.resolve()} (`git fetch --tags` fetches the registry; `spira models` lists it)")
        return prod
    found = {v.version: v for v in versions(repo, name)}
    if reference not in found:
        raise RegistryError(f"{reference}: no such version of {name} in {repo.resolve()} "
                            f"(registered: {', '.join(found) or 'none'}; `git fetch --tags` fetches the registry)")  # fmt: skip
    return found[reference]


def artifact_name(params_file: Path) -> str:
    """The registered model's name, `gate.artifact` of params.yaml, read as plain YAML (the serving install has no OmegaConf)."""
    try:
        return str(yaml.safe_load(params_file.read_text())["gate"]["artifact"])
    except (OSError, KeyError, TypeError) as error:
        raise RegistryError(f"{params_file}: no gate.artifact to name the registered model ({type(error).__name__}); run `spira params`") from error


def next_version(repo: Path, name: str) -> str:
    existing = versions(repo, name)
    return f"v{_version_key(existing[-1].version)[0] + 1 if existing else 1}.0.0"


def register_and_assign_prod(repo: Path, name: str, record: dict, assignment_message: str) -> ModelVersion:
    """Register HEAD as the next version (or reuse HEAD's version) and assign it `prod`."""
    import gto.api

    head = git(repo, "rev-parse", "HEAD").strip()
    version = next((v for v in versions(repo, name) if v.commit == head), None)
    if version is None:
        number = next_version(repo, name)
        gto.api.register(str(repo), name, "HEAD", version=number, message=json.dumps(record, sort_keys=True))
        version = next(v for v in versions(repo, name) if v.version == number)
    assign_prod(repo, name, version.version, assignment_message)
    return version


def assign_prod(repo: Path, name: str, version: str, message: str) -> None:
    import gto.api

    # force: a version that was in prod before (a rollback) gets a new assignment tag.
    gto.api.assign(str(repo), name, PROD, version=version, message=message, force=True)


def artifact_path(repo: Path, name: str, rev: str) -> str:
    """The model file the `artifacts:` section of dvc.yaml declares at `rev`."""
    try:
        declared = (yaml.safe_load(git(repo, "show", f"{rev}:dvc.yaml")) or {}).get("artifacts", {})
    except RegistryError as error:
        raise RegistryError(f"{rev}: no dvc.yaml ({error})") from error
    if name not in declared:
        raise RegistryError(f"{rev}: dvc.yaml declares no artifact {name!r} (artifacts: {', '.join(declared) or 'none'})")
    return str(declared[name]["path"])


def fetch_artifact(repo: Path, name: str, tag: str, destination: Path) -> Path:
    """The model file of version `tag`, read with DVC at that tag (local cache, else the remote)."""
    import dvc.api

    path = artifact_path(repo, name, tag)
    try:
        with dvc.api.open(path, repo=str(repo), rev=tag, mode="rb") as source:
            destination.write_bytes(source.read())
    except Exception as error:  # DVC raises many kinds; all mean the same here.
        raise RegistryError(
            f"the champion {tag}: {path} cannot be fetched ({type(error).__name__}: {error}). "
            f"Fetch the registered versions into the DVC cache with `dvc fetch --all-tags` (a DVC remote must hold them: "
            f"`dvc push --all-tags` where they were trained), then check with `dvc get . {path} --rev {tag}`"
        ) from error
    return destination
