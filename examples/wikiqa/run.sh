#!/usr/bin/env bash
# WikiQA recipe (web QA relevance ranking; MAP/MRR per question on WikiQA test).
#   WIKIQA=../shared/datasets/wikiqa OUT=runs/wikiqa bash examples/wikiqa/run.sh
# LIMIT=N trains on the first N training rows (RESULTS.md says what was used); other knobs in
# examples/recipe.sh. Hub users: change TRAIN/DEV/TEST below to --dataset wiki_qa --split train /
# --eval-split validation / --dataset wiki_qa --split test (with --group-column question_id).
set -euo pipefail
cd "$(dirname "$0")/../.."
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
TASK=wikiqa
OUT=${OUT:-runs/wikiqa}
METRIC=map
LIMIT_OPT=(); [ -n "${LIMIT:-}" ] && LIMIT_OPT=(--limit "$LIMIT")
TRAIN=(--data "$WIKIQA/WikiQA-train.txt" --columns query,passage,label --task ranking "${LIMIT_OPT[@]}")
DEV=(--eval-data "$WIKIQA/WikiQA-dev.txt")                   # same headerless format as train
EXPORT_DATA=(--data "$WIKIQA/WikiQA-dev.txt" --columns query,passage,label)
TEST=(--data "$WIKIQA/WikiQA-test.tsv" --group-column QuestionID)
MAXLEN=${MAXLEN:-64}                                         # WikiQA pairs: p95 67 tokens, p99 89
source examples/recipe.sh
