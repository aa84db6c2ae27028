#!/usr/bin/env bash
# Issue 20: what a new user gets with DEFAULT options on each shared task, on a fixed subsample.
# Per task: a MiniLM-L6 teacher (defaults, bf16 to fit the CPU budget), its label store, and three 3-layer
# students with default options: fine-tuned only, distilled (--labels), distilled with PKD (--pkd skip).
# Then examples/defaults/collect.py scores every model on the task's test file.
#   GLUE=../shared/datasets/glue WIKIQA=../shared/datasets/wikiqa OUT=runs/defaults ROWS=1000 SEEDS="1" \
#     bash examples/defaults/run.sh
# Every step is skipped when its output is complete, so the script can be stopped and run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
source examples/defaults/tasks.sh
GLUE=${GLUE:-../shared/datasets/glue}
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
OUT=${OUT:-runs/defaults}
ROWS=${ROWS:-1000}
SEEDS=${SEEDS:-1}
TASKS=${TASKS:-"rte mrpc sst2 wikiqa"}

for task in $TASKS; do
  T=$OUT/$task
  read -r -a TRAIN <<< "$(train_args "$task")"
  step "$T/teacher" "$task: teacher (defaults, bf16)" \
    bertdistill finetune "${TRAIN[@]}" --mixed-precision bf16 --output "$T/teacher"
  step "$T/labels" "$task: teacher labels" \
    bertdistill label --teacher "t1=$T/teacher" "${TRAIN[@]}" --hidden-layers skip --student-layers 3 \
      --backend bf16 --quiet --output "$T/labels"
  for s in $SEEDS; do
    step "$T/finetune-s$s" "$task: student fine-tuned only, seed $s" \
      bertdistill finetune "${TRAIN[@]}" --student-layers 3 --seed "$s" --output "$T/finetune-s$s"
    step "$T/kd-s$s" "$task: student distilled (defaults), seed $s" \
      bertdistill finetune "${TRAIN[@]}" --labels "$T/labels" --student-layers 3 --seed "$s" --output "$T/kd-s$s"
    step "$T/pkd-s$s" "$task: student distilled with --pkd skip, seed $s" \
      bertdistill finetune "${TRAIN[@]}" --labels "$T/labels" --pkd skip --student-layers 3 --seed "$s" \
        --output "$T/pkd-s$s"
  done
done
python examples/defaults/collect.py --out "$OUT" --glue "$GLUE" --wikiqa "$WIKIQA" --tasks $TASKS
