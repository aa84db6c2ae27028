#!/usr/bin/env bash
# MRPC recipe (GLUE paraphrase pairs; accuracy and F1 on the labeled MSRP test set).
#   GLUE=../shared/datasets/glue OUT=runs/mrpc bash examples/mrpc/run.sh
# Hub users: TRAIN=(--dataset glue --subset mrpc --split train), DEV=(--eval-split validation); the hub's
# test split has no gold labels, so test on validation or the labeled MSRP file.
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/datasets/glue}
TASK=mrpc
OUT=${OUT:-runs/mrpc}
METRIC=accuracy
LIMIT_OPT=(); [ -n "${LIMIT:-}" ] && LIMIT_OPT=(--limit "$LIMIT")
TRAIN=(--data "$GLUE/MRPC/train.tsv" "${LIMIT_OPT[@]}")      # columns #1 String, #2 String, Quality detected
DEV=(--eval-data "$GLUE/MRPC/dev.tsv")
EXPORT_DATA=(--data "$GLUE/MRPC/dev.tsv")
TEST=(--data "$GLUE/MRPC/msr_paraphrase_test.txt")           # the labeled MSRP test file
TEACHER_EPOCHS=${TEACHER_EPOCHS:-3}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-4}
MAXLEN=${MAXLEN:-96}                                         # MRPC pairs are longer than WikiQA's
source examples/recipe.sh
