"""Compose params.yaml from conf/ (what `dvc exp run` does before each run).

    python -m spira.compose_params [override ...]   e.g. model.dropout=0.5
"""

import sys
from pathlib import Path

from spira.config import compose_params


def main() -> None:
    compose_params(Path("params.yaml"), sys.argv[1:])


if __name__ == "__main__":
    main()
