#!/usr/bin/env bash
# MRPC recipe (GLUE paraphrase pairs; accuracy and F1 on the labeled MSRP test set), all 3,668 training
# pairs: two MiniLM-6L teachers, a 3-layer student pruned from one of them to width 256, the paper's
# comparison on that student (fine-tuned only, KD, PKD, MKDM, TMKD over a BM25-mined stage-1 corpus;
# 3 seeds), then one bench run of the deployed student against the teacher on every backend. Steps skip
# when complete; about 1 hour on 2 CPU cores from nothing (RESULTS.md).
#   GLUE=../shared/datasets/glue OUT=runs/mrpc-study bash examples/mrpc/run.sh
# Hub users: TRAIN=(--dataset glue --subset mrpc --split train), DEV=(--eval-split validation) in study.sh;
# the hub's test split has no gold labels, so test on validation or the labeled MSRP file.
# The best pipeline alone, as one recipe file: bertdistill distill --config examples/mrpc/recipe.yaml
# (the same steps and settings as this script's teachers, labels, prune, corpus and deployed student;
# tests/test_recipes.py checks them). This script stays for the paper comparison around it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/mrpc-study}
PART=paper OUT=$OUT bash examples/mrpc/study.sh
python examples/mrpc/collect_study.py --out "$OUT" --recipe > "$OUT/RECIPE.generated.md"
echo "results: $OUT/RECIPE.generated.md"
