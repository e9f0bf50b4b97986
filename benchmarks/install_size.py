"""Disk size of what `pip install '.[serve]'` installs, measured on this environment.

    python benchmarks/install_size.py            # extras: serve
    python benchmarks/install_size.py --extras   # no extras: the pipeline alone
    python benchmarks/install_size.py --only onnxruntime soundfile fastapi   # any set of installed packages

Walks the requirement closure of the installed `spira` distribution (with the
given extras) through the installed packages' metadata and sums the sizes of
the files each one installed (its RECORD), so no download is needed. Prints
the total and the largest distributions.
"""

from __future__ import annotations

import argparse
import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from results_file import default_output, recorded


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: set[str]) -> dict[str, int]:
    """Installed distribution name -> bytes on disk, for root[extras] and everything it needs."""
    sizes: dict[str, int] = {}
    pending = [(root, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, wanted = pending.pop()
        if (canonical(name), wanted) in seen:
            continue
        seen.add((canonical(name), wanted))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional dependency for another platform
        if canonical(name) not in sizes:
            sizes[canonical(name)] = sum(
                (Path(dist.locate_file(file))).stat().st_size for file in dist.files or [] if Path(dist.locate_file(file)).is_file()
            )
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker_ok = requirement.marker is None or any(
                requirement.marker.evaluate(default_environment() | {"extra": extra}) for extra in (wanted or {""})
            )
            if marker_ok:
                pending.append((requirement.name, frozenset(requirement.extras)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", nargs="*", default=["serve"], help="extras of spira to include (default: serve)")
    parser.add_argument("--only", nargs="+", metavar="PACKAGE", help="measure these installed packages and what they need instead")
    parser.add_argument("--output", type=Path, default=default_output("install_size"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("install_size", args.output):
        if args.only:
            sizes = {name: size for package in args.only for name, size in closure(package, set()).items()}
            label = " + ".join(args.only)
        else:
            sizes = closure("spira", set(args.extras))
            label = f"spira[{','.join(args.extras)}]" if args.extras else "spira"
        total = sum(sizes.values())
        print(f"{label}: {len(sizes)} distributions, {total / 2**30:.2f} GiB installed")
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:12]:
            print(f"  {size / 2**20:8.0f} MiB  {name}")


if __name__ == "__main__":
    main()
