#!/usr/bin/env bash
# GPU check, ready to run on a machine with an NVIDIA GPU (under 8 minutes with
# the default demo cohort on one H200 node):
#   1. the demo cohort: generate, prepare, featurize (stage scripts, own params file,
#      run in the work folder: the pipeline writes its fixed paths data/... there);
#   2. trainer=gpu (bf16-mixed) and trainer=ddp, a fixed number of steps each
#      (python -m spira.experiment, one run folder each under the work folder),
#      with nvidia-smi sampled every 0.5 s: GPU memory and utilisation;
#   3. bench_epoch.py trainer=gpu: windows/s of the data path and of an epoch, and
#      the ratio to the SPIRA-style baseline; the data path keeps the GPU busy when
#      its loader yields several times the windows/s the training step consumes;
#   4. compare_predictions.py: the per-file test probabilities of each trained
#      model on the GPU (bf16) agree with the CPU (float32) within TOLERANCE.
# Exit status 1 when a run fails or the probabilities disagree.
#
#   benchmarks/gpu_check.sh [--cpu] [--dry-run] [--cohort default|smoke] [--steps N] [--workers N] [--work DIR]
#
# --cpu runs the same steps with trainer=cpu and trainer=ddp_cpu (no GPU, no
# nvidia-smi; checks the script itself); --dry-run prints the commands only.
set -euo pipefail

MODE=gpu DRY_RUN=0 COHORT=default STEPS=300 WORKERS=4 WORK="${OUT:-/tmp/spira_gpu_check}"
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --dry-run) DRY_RUN=1 ;;
    --cohort) COHORT="${2:?--cohort needs default or smoke}"; shift ;;
    --steps) STEPS="${2:?--steps needs a number}"; shift ;;
    --workers) WORKERS="${2:?--workers needs a number}"; shift ;;
    --work) WORK="${2:?--work needs a folder}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_check.sh: --steps must be a positive integer, got $STEPS" >&2; exit 2; }
[[ "$WORKERS" =~ ^[0-9]+$ ]] || { echo "gpu_check.sh: --workers must be a non-negative integer, got $WORKERS" >&2; exit 2; }
case "$COHORT" in default) EXPERIMENT=() ;; smoke) EXPERIMENT=(experiment=smoke) ;; *) echo "gpu_check.sh: --cohort must be default or smoke" >&2; exit 2 ;; esac
if [[ "$MODE" == gpu ]]; then
  TRAINERS=(gpu ddp) DEVICE=cuda PRECISION=bf16-mixed TOLERANCE=0.02
  if [[ "$DRY_RUN" == 0 ]] && ! command -v nvidia-smi >/dev/null; then
    echo "gpu_check.sh: no nvidia-smi on this machine: run with --cpu to check the script without a GPU" >&2; exit 2
  fi
else
  TRAINERS=(cpu ddp_cpu) DEVICE=cpu PRECISION=32-true TOLERANCE=1e-6
fi

cd "$(dirname "$0")/.."
[[ -f .venv/bin/activate && -z "${VIRTUAL_ENV:-}" ]] && source .venv/bin/activate
DATA="$WORK/data"
COMMON=("${EXPERIMENT[@]}" "logger=csv")
run() { echo "+ $*"; [[ "$DRY_RUN" == 1 ]] || "$@"; }
# The stages and the Hydra entry read and write data/ under the working folder.
in_work() { echo "+ cd $WORK && $*"; [[ "$DRY_RUN" == 1 ]] || (cd "$WORK" && "$@"); }

echo "gpu check: mode $MODE, cohort $COHORT, $STEPS steps per trainer, work folder $WORK"
[[ "$DRY_RUN" == 1 ]] || { rm -rf "$WORK"; mkdir -p "$WORK"; cp dvc.yaml "$WORK/"; }
started=$SECONDS
run spira params --output "$WORK/params_data.yaml" "${COMMON[@]}"
for stage in generate_demo prepare featurize; do
  in_work python -m spira.stages.$stage --params params_data.yaml
done
echo "data ready after $((SECONDS - started)) s"

for trainer in "${TRAINERS[@]}"; do
  out="$WORK/$trainer"
  [[ "$DRY_RUN" == 1 ]] || mkdir -p "$out"
  if [[ "$MODE" == gpu && "$DRY_RUN" == 0 ]]; then
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits -lms 500 > "$out/nvidia_smi.csv" &
    sampler=$!
  fi
  begun=$SECONDS
  # The Hydra entry: checkpoints, metrics and predictions in the run folder $out.
  in_work python -m spira.experiment "${COMMON[@]}" "trainer=$trainer" "+trainer.max_steps=$STEPS" "trainer.max_epochs=1000" \
    "train.num_workers=$WORKERS" "hydra.run.dir=$out"
  seconds=$((SECONDS - begun))
  [[ -n "${sampler:-}" ]] && { kill "$sampler"; wait "$sampler" 2>/dev/null || true; unset sampler; }
  if [[ "$DRY_RUN" == 0 ]]; then
    echo "trainer=$trainer: $STEPS steps in $seconds s (start-up and validation included)"
    [[ -f "$out/nvidia_smi.csv" ]] && python - "$out/nvidia_smi.csv" "$trainer" <<'PY'
import sys
import pandas as pd
samples = pd.read_csv(sys.argv[1], names=["gpu", "util", "used", "total"], skipinitialspace=True)
busy = samples[samples["util"] > 0]
for gpu, rows in samples.groupby("gpu"):
    active = rows[rows["util"] > 0]
    print(f"trainer={sys.argv[2]} GPU {gpu}: memory peak {rows['used'].max()} / {rows['total'].max()} MiB, "
          f"utilisation mean {active['util'].mean() if len(active) else 0:.0f}% over {len(active)} active samples of 0.5 s")
PY
  fi
  run python benchmarks/compare_predictions.py "$out/checkpoints/best.ckpt" --features "$DATA/features" \
    --device "$DEVICE" --precision "$PRECISION" --tolerance "$TOLERANCE"
done

run python benchmarks/bench_epoch.py --prepared "$DATA/prepared" --features "$DATA/features" --workers "$WORKERS" \
  --batches 50 "${EXPERIMENT[@]}" "trainer=${TRAINERS[0]}"
echo "the data path keeps the device busy when 'data path (loader ...)' x workers is well above the 'epoch' windows/s"
echo "gpu check done in $((SECONDS - started)) s"
