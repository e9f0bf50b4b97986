"""The `spira` command: what users run by hand, one subcommand each.

    spira params [OVERRIDE ...]        compose params.yaml from conf/, as `dvc exp run` does
    spira calibrate-noise [--split S]   measure the ward-noise bounds on the prepared data
    spira predict AUDIO... [--model M]  score recordings with an exported model (models/export)
    spira serve [--model M] [--port P]  the same over HTTP (POST /predict, GET /health, GET /model)

The DVC stages have entry points of their own (`python -m spira.stages.<stage>`),
and the Hydra sweeps theirs (`python -m spira.train`); this command is for the
steps around them. Like them it is thin: the work is in spira.pipeline. Every subcommand prints counts and figures, never a file
name or an id of the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spira.config import compose_params, load_params

PARAMS_HELP = "composed parameters (default: params.yaml)"


def params_command(args: argparse.Namespace) -> None:
    compose_params(Path(args.output), args.overrides)
    print(f"{args.output} composed from conf/" + (f" with {' '.join(args.overrides)}" if args.overrides else ""))


def calibrate_noise_command(args: argparse.Namespace) -> None:
    import soundfile as sf

    from spira.augment.calibrate import MIN_PAUSE_SECONDS, format_amplitude, override_command
    from spira.pipeline.calibrate import calibrate_noise

    params = load_params(args.params)
    try:
        bounds, selection = calibrate_noise(params, args.split, args.label, args.quantile)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(str(error))
    except sf.LibsndfileError:
        # soundfile's message names the file; patient data: say only what to do.
        sys.exit(f"a prepared audio file of the {args.label} files is missing or unreadable; rerun `dvc repro prepare`")
    statistic = "plain min/max, as SPIRA" if args.quantile == 0 else f"{args.quantile:g} and {1 - args.quantile:g} quantiles"
    print(
        f"noise-only peaks of {bounds.files_used} {selection} "
        f"({bounds.files_skipped} skipped: no pause of {MIN_PAUSE_SECONDS:g} s or more)"
    )
    print(f"min_amplitude {format_amplitude(bounds.min_amplitude)}  max_amplitude {format_amplitude(bounds.max_amplitude)}  ({statistic})")
    configured = params.get("augment", {}).get("ward_noise")
    if configured:
        print(f"configured now: min_amplitude {configured.min_amplitude}  max_amplitude {configured.max_amplitude}")
    else:
        print("the configured augment group inserts no ward noise: add -S augment=spira_noise to train with these bounds")
    print("train and test with these bounds:")
    print(override_command(bounds))


def predict_command(args: argparse.Namespace) -> None:
    from spira.pipeline.serving import predict_files
    from spira.serving.predict import exit_status, write_records

    try:
        records = predict_files(args.model, args.audio)
    except (FileNotFoundError, ValueError) as error:
        print(f"spira predict: {error}", file=sys.stderr)
        sys.exit(2)
    if args.out:
        with open(args.out, "w", newline="") as stream:
            write_records(records, args.format, stream)
    else:
        write_records(records, args.format, sys.stdout)
    failed = [record for record in records if record["status"] != "ok"]
    print(f"{len(records) - len(failed)} of {len(records)} files scored", file=sys.stderr)
    for record in failed:
        print(f"  {record['reason']}: {record['message']}", file=sys.stderr)
    sys.exit(exit_status(records))


def serve_command(args: argparse.Namespace) -> None:
    from spira.pipeline.serving import serve_model

    try:
        serve_model(args.model, args.host, args.port, args.max_upload_mb * 1024 * 1024)
    except (FileNotFoundError, ValueError) as error:
        print(f"spira serve: {error}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from spira.augment.calibrate import LABELS
    from spira.data.splits import SPLITS

    parser = argparse.ArgumentParser(prog="spira", description="SPIRA continuous training: the commands around `dvc repro`.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    params = commands.add_parser(
        "params",
        help="compose params.yaml from conf/",
        description="Compose params.yaml from conf/ with Hydra overrides, exactly as `dvc exp run -S` does. "
        "Run it after editing conf/: `dvc repro` reads params.yaml and does not recompose it.",
    )
    params.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra override, e.g. model.dropout=0.5 or augment=none")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.set_defaults(handler=params_command)

    calibrate = commands.add_parser(
        "calibrate-noise",
        help="measure the ward-noise insertion bounds on the prepared data",
        description="Measure the peak amplitude of the noise-only stretches of the prepared recordings "
        "and print the ward-noise bounds to train and test with, as `dvc exp run -S` overrides.",
    )
    calibrate.add_argument("--params", default="params.yaml", help=PARAMS_HELP)
    calibrate.add_argument("--split", choices=[*SPLITS, "all"], default="train", help="prepared split to measure (default: train)")
    calibrate.add_argument(
        "--label", choices=[*LABELS, "all"], default="patient",
        help="recordings to measure (default: patient, as SPIRA: patients were recorded in the wards)",
    )  # fmt: skip
    calibrate.add_argument(
        "--quantile", type=float, default=0.0,
        help="take the q and 1-q quantiles of the per-file peaks instead of min and max (default: 0, SPIRA's min/max)",
    )  # fmt: skip
    calibrate.set_defaults(handler=calibrate_noise_command)

    model_help = "export folder of the model (default: models/export, written by `dvc repro export`)"
    predict = commands.add_parser(
        "predict",
        help="score recordings with an exported model",
        description="Score audio files with the ONNX model of an export folder: the same decoding, resampling, "
        "windows and features as the pipeline. One record per file (probability, decision, windows, seconds, "
        "model version) or an error record with the reason. Exit status: 0 all scored, 1 some failed, 2 none scored.",
    )
    predict.add_argument("audio", nargs="+", metavar="AUDIO", help="audio file(s), any format the pipeline ingests")
    predict.add_argument("--model", default="models/export", help=model_help)
    predict.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default: jsonl)")
    predict.add_argument("--out", help="file to write (default: standard output)")
    predict.set_defaults(handler=predict_command)

    serve = commands.add_parser(
        "serve",
        help="serve an exported model over HTTP",
        description="POST /predict (multipart field 'file') returns the record `spira predict` writes; "
        "GET /health; GET /model returns model.json. Uploads are deleted before the response; nothing about them is logged.",
    )
    serve.add_argument("--model", default="models/export", help=model_help)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--max-upload-mb", type=int, default=20, help="largest accepted upload in MiB (default: 20)")
    serve.set_defaults(handler=serve_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
