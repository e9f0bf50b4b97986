"""DVC stage generate_demo: write the seeded synthetic SPIRA-layout cohort."""

from spira.errors import exit_on_user_error
from spira.layout import PIPELINE
from spira.pipeline.demo import generate_demo
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        written = generate_demo(stage_params(__doc__, "generate_demo"))
    print(f"demo cohort written to {PIPELINE.demo}: {written}")


if __name__ == "__main__":
    main()
