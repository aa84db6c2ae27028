#!/usr/bin/env bash
# Issue 20: what a new user gets with DEFAULT options on each shared task, on a fixed subsample.
# Per task: a MiniLM-L6 teacher with default options, its label store, and 3-layer students with default
# options: fine-tuned only and distilled (--labels); SEEDS_SMALL for RTE and MRPC, SEEDS for the others.
# Only the data options and --student-layers 3 are given. Accelerate's configuration selects bf16
# (ACCELERATE_MIXED_PRECISION, as `accelerate config` would) so that the study fits the CPU budget.
# Then examples/defaults/collect.py scores every model on the task's test file.
#   OUT=runs/defaults2 ROWS=2000 bash examples/defaults/run.sh
# Every step is skipped when its output is complete, so the script can be stopped and run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
source examples/defaults/tasks.sh
OUT=${OUT:-runs/defaults2}
ROWS=${ROWS:-2000}
SEEDS=${SEEDS:-1}
SEEDS_SMALL=${SEEDS_SMALL:-"1 2 3"}
TASKS=${TASKS:-"rte mrpc sst2 wikiqa"}
export ACCELERATE_MIXED_PRECISION=${ACCELERATE_MIXED_PRECISION:-bf16} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

for task in $TASKS; do
  T=$OUT/$task
  read -r -a TRAIN <<< "$(train_args "$task")"
  step "$T/teacher" "$task: teacher (defaults)" bertdistill finetune "${TRAIN[@]}" --output "$T/teacher"
  step "$T/labels" "$task: teacher labels" \
    bertdistill label --teacher "t1=$T/teacher" "${TRAIN[@]}" --hidden-layers skip --student-layers 3 \
      --backend bf16 --quiet --output "$T/labels"
  seeds=$SEEDS; case $task in rte|mrpc) seeds=$SEEDS_SMALL;; esac
  for s in $seeds; do
    step "$T/finetune-s$s" "$task: student fine-tuned only, seed $s" \
      bertdistill finetune "${TRAIN[@]}" --student-layers 3 --seed "$s" --output "$T/finetune-s$s"
    step "$T/kd-s$s" "$task: student distilled (defaults), seed $s" \
      bertdistill finetune "${TRAIN[@]}" --labels "$T/labels" --student-layers 3 --seed "$s" --output "$T/kd-s$s"
  done
done
python examples/defaults/collect.py --out "$OUT" --glue "$GLUE" --wikiqa "$WIKIQA" --tasks $TASKS
