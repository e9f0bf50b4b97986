"""The `spira` command: what users run by hand, one subcommand each.

    spira params [OVERRIDE ...]        compose params.yaml from conf/, as `dvc exp run` does
    spira calibrate-noise [--split S]   measure the ward-noise bounds on the prepared data
    spira predict AUDIO... [--model M]  score recordings with an exported model (models/export)
    spira serve [--model M] [--port P]  the same over HTTP (POST /predict, GET /health, GET /model)
    spira promote [--force --reason T]  register HEAD's model and assign it prod when its gate passed
    spira rollback --reason TEXT        assign prod to the previous promoted version
    spira models                        versions, stage, date, data version, test figures; prod's history
    spira verify [--tolerance T]        rerun HEAD from scratch in a scratch clone, compare every metric

The DVC stages have entry points of their own (`python -m spira.stages.<stage>`),
and the Hydra sweeps theirs (`python -m spira.experiment`); this command is for the
steps around them. Like them it is thin: the work is in spira.pipeline. Every
subcommand prints counts and figures, never a file name or an id of the data.
A user error ends a subcommand with one line `error: spira <command>: ...`
and the exit status of `spira.errors` (1 refused, 2 usage; `predict` and
`serve`: 2 when the model cannot be loaded).

`predict`, `serve` and `models` run in the serving install (`pip install '.[serve]'`:
no torch, Hydra or DVC), so every import of the training side is inside the
subcommand that needs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spira.augment.noise_level import LABELS
from spira.data import SPLITS
from spira.errors import EXIT_USAGE, UsageError, UserError, exit_on_user_error
from spira.serving.limits import MIB, SCORING_THREADS, ServeLimits

PARAMS_HELP = "composed parameters (default: params.yaml)"


# Subcommand -> the extra it needs beyond the serving install's core (`predict`, `models`: none).
NEEDS_EXTRA = {"params": "train", "calibrate-noise": "train", "promote": "train", "rollback": "train", "serve": "serve", "verify": "train"}


def params_command(args: argparse.Namespace) -> None:
    from hydra.errors import ConfigCompositionException

    from spira.config import compose_config, compose_params
    from spira.layout import check_params

    # An override Hydra cannot apply is a usage error: its message, not its traceback.
    try:
        composed = compose_config(args.overrides)
    except ConfigCompositionException as error:
        raise UsageError(str(error)) from None
    check_params(composed)
    compose_params(Path(args.output), args.overrides)
    print(f"{args.output} composed from conf/" + (f" with {' '.join(args.overrides)}" if args.overrides else ""))


def calibrate_noise_command(args: argparse.Namespace) -> None:
    import soundfile as sf

    from spira.augment.noise_level import MIN_PAUSE_SECONDS, format_amplitude, override_command
    from spira.config import load_params
    from spira.pipeline.calibrate import calibrate_noise

    params = load_params(args.params)
    with exit_on_user_error("spira calibrate-noise: ", also=(FileNotFoundError, ValueError)):
        try:
            bounds, selection = calibrate_noise(params, args.split, args.label, args.quantile)
        except sf.LibsndfileError:
            # soundfile's message names the file; patient data: say only what to do.
            raise UserError(f"a prepared audio file of the {args.label} files is missing or unreadable; rerun `dvc repro prepare`") from None
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

    # A model that cannot be loaded: nothing scored, predict's status 2.
    with exit_on_user_error("spira predict: ", EXIT_USAGE, also=(FileNotFoundError, ValueError)):
        records = predict_files(args.model, args.audio, Path(args.params))
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

    with exit_on_user_error("spira serve: ", EXIT_USAGE, also=(FileNotFoundError, ValueError)):
        limits = ServeLimits(args.max_upload_mb * MIB, args.max_queue, args.upload_timeout, args.max_audio_seconds)
        serve_model(args.model, args.host, args.port, limits, Path(args.params))


def promote_command(args: argparse.Namespace) -> None:
    from spira.config import load_params
    from spira.pipeline.registry import promote

    version, promoted = promote(Path("."), load_params(args.params), args.force, args.reason)
    if not promoted:
        print(f"HEAD's model is {version.tag}, already in prod: nothing to promote")
        return
    print(f"{version.tag} is in prod" + (f" (forced: {args.reason})" if args.force else ""))


def rollback_command(args: argparse.Namespace) -> None:
    from spira.config import load_params
    from spira.pipeline.registry import rollback

    previous, current = rollback(Path("."), str(load_params(args.params).gate.artifact), args.reason)
    print(f"prod rolled back from {previous} to {current}: {args.reason}")


def models_command(args: argparse.Namespace) -> None:
    from spira.pipeline.serving import model_table
    from spira.registry.versions import artifact_name

    name = artifact_name(Path(args.params))
    rows, history = model_table(Path("."), name)
    if not rows:
        print(f"no version of {name} registered yet: `dvc repro`, commit, then `spira promote`")
        return
    figure = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
    print(f"{'version':<9}{'stage':<6}{'date':<18}{'data':<10}{'auroc':>7}{'sens':>7}{'noisy':>7}{'thr':>6}  gate")
    for row in rows:
        print(f"{row['version']:<9}{row['stage']:<6}{row['date']:<18}{row['data']:<10}{figure(row['auroc']):>7}"
              f"{figure(row['sensitivity']):>7}{figure(row['noisy_auroc']):>7}{figure(row['threshold']):>6}  {row['gate']}")  # fmt: skip
    print(f"\nprod history ({name}#prod#N tags):")
    for number, version, date, message in history:
        print(f"  #{number:<3} {date[:16].replace('T', ' ')}  {version:<8} {message}")


def machine_line(result) -> str:
    """Which comparison `spira verify` applied, and why."""
    machine = result.this_machine
    here = f"{machine['cpu']}, {' '.join(machine['cpu_kernel_flags']) or 'no listed kernel flags'}, torch {machine['torch']}, {machine['torch_threads']} threads"
    if result.committed_machine is None:
        return f"no machine record committed (reports/machine.json): numbers must agree within ±{result.tolerance:g}"
    if result.exact:
        return f"same machine as the committed run ({here}): every value must be identical"
    changed = sorted(key for key in result.committed_machine.keys() | machine.keys() if result.committed_machine.get(key) != machine.get(key))
    return f"another machine than the committed run (differs in {', '.join(changed)}; here: {here}): numbers must agree within ±{result.tolerance:g}"


def verify_command(args: argparse.Namespace) -> None:
    from spira.pipeline.verify import verify

    result = verify(Path("."), args.tolerance, Path(args.workdir) if args.workdir else None, args.keep)
    print(machine_line(result))
    for item in result.files:
        if not item.differences:
            agreement = "identical" if item.largest_gap == 0 else f"within ±{result.tolerance:g} (largest gap {item.largest_gap:.6g})"
            print(f"  {item.path}: {item.metrics} values {agreement}")
            continue
        print(f"  {item.path}: {len(item.differences)} of {item.metrics} values differ:")
        for difference in item.differences:
            gap = f" (gap {difference.gap:.6g})" if difference.gap is not None else ""
            print(f"    {difference.key.partition(':')[2]}: committed {difference.committed!r}, rerun {difference.rerun!r}{gap}")
    compared = sum(item.metrics for item in result.files)
    if not result.passed:
        sys.exit(f"NOT reproduced: commit {result.commit}'s metrics differ from a rerun from scratch (above)")
    print(f"reproduced: {compared} values in {len(result.files)} metrics files of commit {result.commit} "
          + ("identical" if result.exact else f"within ±{result.tolerance:g}"))  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
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

    model_help = ("export folder of the model (default: models/export, written by `dvc repro export`), or a registered version: "
                  "prod or vN.N.N (its export read from this repository's DVC cache)")  # fmt: skip
    predict = commands.add_parser(
        "predict",
        help="score recordings with an exported model",
        description="Score audio files with the ONNX model of an export folder: the same decoding, resampling, "
        "windows and features as the pipeline. One record per file (probability, decision, windows, seconds, "
        "model version) or an error record with the reason. Exit status: 0 all scored, 1 some failed, 2 none scored.",
    )
    predict.add_argument("audio", nargs="+", metavar="AUDIO", help="audio file(s), any format the pipeline ingests")
    predict.add_argument("--model", default="models/export", help=model_help)
    predict.add_argument("--params", default="params.yaml", help="names the registered model (gate.artifact) for --model prod|vN.N.N")
    predict.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default: jsonl)")
    predict.add_argument("--out", help="file to write (default: standard output)")
    predict.set_defaults(handler=predict_command)

    serve = commands.add_parser(
        "serve",
        help="serve an exported model over HTTP",
        description="POST /predict (multipart field 'file') returns the record `spira predict` writes; "
        "GET /health; GET /model returns model.json; GET /queue the requests in progress. A refused request gets a 4xx "
        "(503 when busy) with a JSON reason and message. Uploads are deleted before the response; nothing about them is logged.",
    )
    serve.add_argument("--model", default="models/export", help=model_help)
    serve.add_argument("--params", default="params.yaml", help="names the registered model (gate.artifact) for --model prod|vN.N.N")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    limits = ServeLimits()
    serve.add_argument("--max-upload-mb", type=int, default=limits.max_upload_bytes // MIB, help="largest accepted upload in MiB; 413 above (default: %(default)s)")
    serve.add_argument(
        "--max-queue", type=int, default=limits.max_queue,
        help="POST /predict requests handled at once (receiving, waiting, scored; at most "
        f"{SCORING_THREADS} scored at a time on this machine); one more gets 503 with Retry-After, its body unread (default: %(default)s)",
    )  # fmt: skip
    serve.add_argument("--upload-timeout", type=float, default=limits.upload_timeout, help="seconds an upload's body may take to arrive; 408 after (default: %(default)s)")
    serve.add_argument(
        "--max-audio-seconds", type=float, default=limits.max_audio_seconds,
        help="longest recording scored, by its header and then its decoded length; 422 too_long above (default: %(default)s: 10 min)",
    )  # fmt: skip
    serve.set_defaults(handler=serve_command)

    promote = commands.add_parser(
        "promote",
        help="register HEAD's model and assign it prod, when the committed gate result passes",
        description="Register the model of HEAD as the next version (tag <model>@vN.0.0) and assign it the stage prod, "
        "only when the committed metrics/gate.json passed for HEAD's model and data against today's prod.",
    )
    promote.add_argument("--params", default="params.yaml", help=PARAMS_HELP)
    promote.add_argument("--force", action="store_true", help="promote whatever the gate says (needs --reason)")
    promote.add_argument("--reason", help="why: recorded in the tags")
    promote.set_defaults(handler=promote_command)

    rollback = commands.add_parser("rollback", help="assign prod to the previous promoted version",
                                   description="Assign prod to the latest earlier version that was in prod before (a new tag).")  # fmt: skip
    rollback.add_argument("--params", default="params.yaml", help=PARAMS_HELP)
    rollback.add_argument("--reason", required=True, help="why: recorded in the tag")
    rollback.set_defaults(handler=rollback_command)

    verify = commands.add_parser(
        "verify",
        help="rerun the committed pipeline from scratch and compare every metric",
        description="Clone HEAD into a scratch folder, rerun every stage there (dvc repro --force --no-run-cache) and "
        "compare every metric DVC tracks with the committed one: identical on the machine that trained the committed "
        "model (reports/machine.json), within --tolerance elsewhere. Exit status 1 when they differ.",
    )
    verify.add_argument("--tolerance", type=float, default=0.02,
                        help="largest absolute difference accepted on another machine (default: 0.02)")  # fmt: skip
    verify.add_argument("--workdir", help="folder for the scratch clone (default: the system's temporary folder)")
    verify.add_argument("--keep", action="store_true", help="keep the scratch clone to inspect it")
    verify.set_defaults(handler=verify_command)

    models = commands.add_parser("models", help="list the registered versions and the history of prod")
    models.add_argument("--params", default="params.yaml", help=PARAMS_HELP)
    models.set_defaults(handler=models_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)  # a usage error: argparse's one line and EXIT_USAGE
    with exit_on_user_error(f"spira {args.command}: "):
        try:
            args.handler(args)
        except ModuleNotFoundError as error:
            if args.command not in NEEDS_EXTRA:
                raise
            extra = NEEDS_EXTRA[args.command]
            raise UserError(f"needs the {extra} dependencies ({error.name} is not installed): "
                            f"`make install` installs everything, `pip install '.[{extra}]'` these") from None  # fmt: skip


if __name__ == "__main__":
    main()
