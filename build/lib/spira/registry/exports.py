"""The export folder of a registered version, read from git and the local DVC cache.

Serving reads it without DVC (the serving install has neither DVC nor torch).
The version's commit holds a dvc.lock recording the export stage's output
folder and its content hash; DVC 3 keeps a folder in its cache as a listing,
`files/md5/<2>/<rest>.dir` (JSON: relpath and md5 of each file), and each file
under its md5.
"""

from __future__ import annotations

import configparser
import json
import shutil
from pathlib import Path

import yaml

from spira.registry.versions import ModelVersion, RegistryError, git

EXPORT_STAGE = "export"


def cache_dir(repo: Path) -> Path:
    """The DVC cache of `repo`: `cache.dir` of .dvc/config.local or .dvc/config (relative to .dvc/), else .dvc/cache."""
    for name in ("config.local", "config"):
        config = configparser.ConfigParser()
        config.read(repo / ".dvc" / name)
        if config.has_option("cache", "dir"):
            return (repo / ".dvc" / config.get("cache", "dir")).resolve()
    return repo / ".dvc" / "cache"


def cached_file(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def export_out(repo: Path, version: ModelVersion) -> tuple[str, str]:
    """(path, md5 of the folder listing) of the export stage's output at the version's commit."""
    try:
        lock = yaml.safe_load(git(repo, "show", f"{version.commit}:dvc.lock")) or {}
    except RegistryError:
        lock = {}
    outs = lock.get("stages", {}).get(EXPORT_STAGE, {}).get("outs", [])
    if not outs:
        raise RegistryError(f"{version.tag}: its commit's dvc.lock records no {EXPORT_STAGE} stage (registered before the export existed); "
                            f"export it with `git checkout {version.tag} && dvc repro {EXPORT_STAGE}` and pass --model models/export")  # fmt: skip
    return str(outs[0]["path"]), str(outs[0]["md5"])


def copy_export(repo: Path, version: ModelVersion, destination: Path) -> Path:
    """Copy the version's export folder from the local DVC cache into `destination` (an empty folder)."""
    path, listing_md5 = export_out(repo, version)
    cache = cache_dir(repo)
    missing = RegistryError(
        f"{version.tag}: its export ({path}, {listing_md5}) is not in the local DVC cache ({cache}); fetch it with "
        f"`dvc fetch --all-tags` (from the DVC remote it was pushed to), or `dvc get . {path} --rev {version.tag} -o DIR` "
        "and pass --model DIR"
    )
    listing_file = cached_file(cache, listing_md5)
    if not listing_file.is_file():
        raise missing
    for entry in json.loads(listing_file.read_text()):
        if Path(entry["relpath"]).is_absolute() or ".." in Path(entry["relpath"]).parts:
            raise RegistryError(f"{listing_file}: a file of the listing leaves the folder ({entry['relpath']!r}); the DVC cache is damaged")
        source = cached_file(cache, entry["md5"])
        if not source.is_file():
            raise missing
        target = destination / entry["relpath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return destination
