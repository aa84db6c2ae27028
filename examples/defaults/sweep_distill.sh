#!/usr/bin/env bash
# Issues 20 and 33: which distillation options make the distilled 3-layer student beat the same student fine-tuned
# alone, and which PKD weight β never turns a learning student into a collapsed one, with everything else at its
# default. Reuses the teachers and label stores of examples/defaults/run.sh (run it first, TEACHERS_ONLY=1 is
# enough). Each variant is NAME=OPTIONS; a name starting with "finetune" trains without the label store;
# @TEACHER@ in OPTIONS stands for the task's teacher. Seeds run outermost, so a stopped sweep leaves whole seeds.
#   OUT=runs/defaults3 bash examples/defaults/sweep_distill.sh                 # issue 33: PKD's β, SNLI and MRPC
#   OUT=runs/defaults2 TASKS="mrpc sst2" VARIANTS="finetune=;kd=;pkd=--pkd skip;alpha0.9-T4=--alpha 0.9 \
#     --temperature 4;lr2e-4=--lr 2e-4;from-teacher=--student-from @TEACHER@" bash examples/defaults/sweep_distill.sh
# STUDENT_LAYERS (default 3; empty: the whole --model) sets the students' depth, e.g. issue 29's whole MiniLM-L6
# student of an MPNet teacher: STUDENT_LAYERS= VARIANTS="finetune-minilm=--model minilm-l6;kd-minilm=--model minilm-l6".
# collect.py then scores everything under $OUT/sweep-distill, one line per variant (mean ± std over seeds). A run
# whose every evaluation collapsed exits 3 (saved, marked FAILED) and the sweep goes on.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
source examples/defaults/tasks.sh
OUT=${OUT:-runs/defaults3}
ROWS=${ROWS:-2000}
TASKS=${TASKS:-"snli mrpc"}
SEEDS=${SEEDS:-"1 2 3"}
STUDENT_LAYERS=${STUDENT_LAYERS-3}
VARIANTS=${VARIANTS:-"pkd-b10=--pkd skip --pkd-beta 10;pkd-b1=--pkd skip --pkd-beta 1;pkd-b100=--pkd skip --pkd-beta 100"}
export ACCELERATE_MIXED_PRECISION=${ACCELERATE_MIXED_PRECISION:-auto} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
IFS=';' read -r -a VARIANT_LIST <<< "$VARIANTS"
depth=(); [ -n "$STUDENT_LAYERS" ] && depth=(--student-layers "$STUDENT_LAYERS")
for s in $SEEDS; do
  for task in $TASKS; do
    read -r -a TRAIN <<< "$(train_args "$task")"
    S=$OUT/sweep-distill/$task
    for variant in "${VARIANT_LIST[@]}"; do
      name=${variant%%=*}; read -r -a OPTS <<< "${variant#*=}"
      OPTS=("${OPTS[@]//@TEACHER@/$OUT/$task/teacher}")
      labels=(--labels "$OUT/$task/labels"); case $name in finetune*) labels=();; esac
      step "$S/$name-s$s" "$task: $name, seed $s" \
        failed_ok bertdistill finetune "${TRAIN[@]}" "${labels[@]}" "${depth[@]}" "${OPTS[@]}" --seed "$s" \
          --output "$S/$name-s$s"
    done
  done
done
python examples/defaults/collect.py --out "$OUT/sweep-distill" --glue "$GLUE" --wikiqa "$WIKIQA" --snli "$SNLI" \
  --tasks $TASKS
