#!/usr/bin/env bash
# WikiQA recipe (web QA relevance ranking; MAP/MRR per question on WikiQA test), all 20,360 training pairs:
# two MiniLM-6L teachers, a 3-layer student pruned from one of them to width 256, the paper's comparison on
# that student (fine-tuned only, KD, PKD, MKDM, TMKD; 3 seeds) and the best pipeline (TMKD's stage 1 over a
# BM25-mined corpus, then listwise KD), then one bench run of the deployed student against the teacher on
# every backend. Steps skip when complete; about 2 hours on 2 CPU cores from nothing (RESULTS.md).
#   WIKIQA=../shared/datasets/wikiqa OUT=runs/wq bash examples/wikiqa/run.sh
# Hub users: change TRAIN/DEV/TEST in study.sh to --dataset wiki_qa --split train / --eval-split validation /
# --dataset wiki_qa --split test (with --group-column question_id).
# The best pipeline alone, as one recipe file: bertdistill distill --config examples/wikiqa/recipe.yaml
# (the same steps and settings as this script's teachers, labels, prune, corpus and deployed student;
# tests/test_recipes.py checks them). This script stays for the paper comparison around it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/wq}
PART=paper OUT=$OUT bash examples/wikiqa/study.sh
python examples/wikiqa/collect_study.py --out "$OUT" --recipe > "$OUT/RECIPE.generated.md"
echo "results: $OUT/RECIPE.generated.md"
