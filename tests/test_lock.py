"""requirements.lock pins every package the project needs, at the versions pyproject.toml pins."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Callable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO_ROOT


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, separator, version = line.partition("==")
            assert separator and version, f"requirements.lock: {line!r} is not pinned with =="
            assert canonicalize_name(name) not in pins, f"requirements.lock: {name} twice"
            pins[canonicalize_name(name)] = version
    return pins


def project_requirements() -> list[Requirement]:
    """The dependencies and every extra's, with the project's own extras (`spira[serve]` in dev) expanded."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    texts = [*project["dependencies"], *(text for group in extras.values() for text in group)]
    requirements = [Requirement(text) for text in texts]
    return [requirement for requirement in requirements if canonicalize_name(requirement.name) != canonicalize_name(project["name"])]


def test_every_pin_of_pyproject_is_in_the_lock_at_its_version():
    pins = lock_pins()
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), f"{requirement}: requirements.lock has {pins[name]}; run `make lock`"


def dependency_closure(requirements: list[Requirement], known: Callable[[str], bool] = lambda name: True) -> tuple[set[str], set[str]]:
    """Every package `requirements` install, their installed dependencies followed (markers evaluated
    without extras), and those of them `known` rejects (collected, not followed)."""
    pending, seen, unknown = list(requirements), set(), set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        if not known(name):
            unknown.add(name)
            continue
        for text in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            if not dependency.marker or dependency.marker.evaluate({"extra": ""}):
                pending.append(dependency)
    return seen, unknown


def test_the_lock_holds_every_transitive_dependency():
    pins = lock_pins()
    seen, missing = dependency_closure(project_requirements(), lambda name: name in pins)
    assert not missing, f"requirements.lock lacks {sorted(missing)}: run `make lock`"
    assert len(seen) > 100  # torch, lightning, dvc and wandb bring many: the walk really followed them
