#!/usr/bin/env bash
# Issue 20, first sweep: which learning rate and epochs stop 3-layer students from collapsing on small data.
# Reuses the teachers' label stores of examples/defaults/run.sh (run it first); students fine-tuned alone and
# distilled (default α, T) for LRS × EPOCHS; then collect.py scores everything under $OUT/sweep.
#   OUT=runs/defaults TASKS="sst2 mrpc" LRS="1e-4 3e-4" EPOCHS="3 10" bash examples/defaults/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
source examples/defaults/tasks.sh
OUT=${OUT:-runs/defaults}
ROWS=${ROWS:-1000}
TASKS=${TASKS:-"sst2 mrpc"}
LRS=${LRS:-"1e-4 3e-4"}
EPOCHS=${EPOCHS:-"3 10"}
for task in $TASKS; do
  read -r -a TRAIN <<< "$(train_args "$task")"
  S=$OUT/sweep/$task
  for lr in $LRS; do for ep in $EPOCHS; do
    step "$S/finetune-lr$lr-ep$ep" "$task: fine-tuned only, lr $lr, $ep epochs" \
      bertdistill finetune "${TRAIN[@]}" --student-layers 3 --lr "$lr" --epochs "$ep" --output "$S/finetune-lr$lr-ep$ep"
    step "$S/kd-lr$lr-ep$ep" "$task: distilled, lr $lr, $ep epochs" \
      bertdistill finetune "${TRAIN[@]}" --labels "$OUT/$task/labels" --student-layers 3 --lr "$lr" --epochs "$ep" \
        --output "$S/kd-lr$lr-ep$ep"
  done; done
done
python examples/defaults/collect.py --out "$OUT/sweep" --glue "$GLUE" --wikiqa "$WIKIQA" --tasks $TASKS
