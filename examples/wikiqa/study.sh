#!/usr/bin/env bash
# WikiQA studies on all 20,360 training pairs (issues 14, 15, 17): pruned narrow students against
# random-init and full-width ones, ranking losses, and stage-1 corpora. Every step skips when its output
# is complete, so the study runs in parts:  PART=teachers|ranking|prune|corpus bash examples/wikiqa/study.sh
#   PART=prune-kd: issue 14's three students without PKD; PART=corpus-e3: 3 stage-1 passes (issue 15);
#   PART=prune-pkd-init: (a) with PKD from a projection initialized by the prune; PART=paper: issue 21's
#   paper comparison and best pipeline, everything it needs included (examples/wikiqa/run.sh runs it);
#   PART=prune-e3: issue 14's (a) and (c) with 3 epochs of stage 2.
#   WIKIQA=../shared/datasets/wikiqa OUT=runs/wq bash examples/wikiqa/study.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
OUT=${OUT:-runs/wq}
PART=${PART:-all}
SEEDS=${SEEDS:-1 2 3}
MAXLEN=${MAXLEN:-64}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
TRAIN=(--data "$WIKIQA/WikiQA-train.txt" --columns query,passage,label --task ranking)
DEV=(--eval-data "$WIKIQA/WikiQA-dev.txt")
TEST=(--data "$WIKIQA/WikiQA-test.tsv" --group-column QuestionID)
FAST=(--max-length "$MAXLEN" --mixed-precision auto)  # bf16 where the CPU has it in hardware
want() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }

# Two teachers: the 6-layer MiniLM fine-tuned for 1 epoch on all training pairs, seeds 1 and 2.
for t in 1 2; do
  step "$OUT/teachers/t$t" "teacher t$t" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" "${FAST[@]}" \
    --epochs 1 --batch-size 32 --lr 5e-5 --seed "$t" --resume --output "$OUT/teachers/t$t"
done
TEACHERS=(--teacher "t1=$OUT/teachers/t1" --teacher "t2=$OUT/teachers/t2")
want teachers && exit 0

# Teacher outputs of the training set, once: logits and the [CLS] states PKD-skip needs for 3 layers.
step "$OUT/labels/train" "label train" bertdistill label "${TEACHERS[@]}" "${TRAIN[@]}" --max-length "$MAXLEN" \
  --backend "$INFER_BACKEND" --hidden-layers skip --student-layers 3 --output "$OUT/labels/train"
# The narrow student cut from teacher t1 (issue 14): 3 layers (PKD-skip map), width 256, 8 heads, FFN 1024,
# scored on 2,000 training pairs against t1's own predictions.
step "$OUT/students/pruned" "prune t1 to 3L/256/8h/1024" bertdistill prune --model "$OUT/teachers/t1" \
  "${TRAIN[@]}" --limit 2000 --layers 3 --layer-map skip --hidden 256 --heads 8 --ffn 1024 \
  --max-length "$MAXLEN" --quiet --output "$OUT/students/pruned"
want labels && exit 0

# Every student: 1 epoch over all 20,360 pairs, lr 1e-4, batch 32, bf16, best dev-MAP checkpoint kept;
# 2 teachers (one head each), α 0.7, T 2.
train() {  # train NAME SEED OPTIONS...: one student run
  local name=$1 seed=$2; shift 2
  step "$OUT/students/$name-s$seed" "$name, seed $seed" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" --epochs 1 --batch-size 32 --lr 1e-4 --seed "$seed" --resume --labels "$OUT/labels/train" \
    --alpha 0.7 "$@" --output "$OUT/students/$name-s$seed"
}
PRUNED=(--student-from "$OUT/students/pruned")
PKD=(--pkd skip)
LISTWISE=(--head score --term kd=0 --term listwise_kd=0.7)
MARGIN=(--head score --term kd=0 --term margin_mse=0.1)

# Issue 17: pointwise KD (today's 2-class head) against listwise KD and Margin-MSE (one score head), ± PKD,
# on the pruned student. r-point-pkd is also issue 14's student (a).
if want ranking; then
  for s in $SEEDS; do
    train r-point "$s" "${PRUNED[@]}"
    train r-point-pkd "$s" "${PRUNED[@]}" "${PKD[@]}"
    train r-list "$s" "${PRUNED[@]}" "${LISTWISE[@]}"
    train r-list-pkd "$s" "${PRUNED[@]}" "${LISTWISE[@]}" "${PKD[@]}"
    train r-margin "$s" "${PRUNED[@]}" "${MARGIN[@]}"
    train r-margin-pkd "$s" "${PRUNED[@]}" "${MARGIN[@]}" "${PKD[@]}"
  done
fi

# Issue 14: the same distillation (2-teacher KD + PKD) on (b) the pruned shape randomly initialized and
# (c) the first 3 layers of t1 at full width.
if want prune; then
  for s in $SEEDS; do
    train p-random-pkd "$s" --student-config '{"layers": 3, "width": 256, "heads": 8, "intermediate": 1024, "random_init": true}' "${PKD[@]}"
    train p-first3-pkd "$s" --student-from "$OUT/teachers/t1" --student-layers 3 "${PKD[@]}"
  done
fi
# (a) again with PKD, pruned anew so that its config records the kept residual dimensions: the PKD
# projection then starts as their embedding into the teacher's width instead of at random.
if want prune-pkd-init; then
  step "$OUT/students/pruned-v2" "prune t1 again (config records the kept dimensions)" bertdistill prune \
    --model "$OUT/teachers/t1" "${TRAIN[@]}" --limit 2000 --layers 3 --layer-map skip --hidden 256 --heads 8 \
    --ffn 1024 --max-length "$MAXLEN" --quiet --output "$OUT/students/pruned-v2"
  for s in $SEEDS; do
    train r-point-pkd-init "$s" --student-from "$OUT/students/pruned-v2" "${PKD[@]}"
  done
  MODELS=()
  for s in $SEEDS; do MODELS+=(--model "r-point-pkd-init-s$s=$OUT/students/r-point-pkd-init-s$s:$INFER_BACKEND"); done
  [ -f "$OUT/bench-quality-pkd-init.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-pkd-init.json"
fi
# The same without PKD, which collapses the narrow students' scores (RESULTS.md): (a) is r-point.
if want prune-kd; then
  for s in $SEEDS; do
    train p-random "$s" --student-config '{"layers": 3, "width": 256, "heads": 8, "intermediate": 1024, "random_init": true}'
    train p-first3 "$s" --student-from "$OUT/teachers/t1" --student-layers 3
  done
  MODELS=()
  for s in $SEEDS; do for v in p-random p-first3; do MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
  [ -f "$OUT/bench-quality-prune-kd.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-prune-kd.json"
fi

# Issue 14 again with 3 epochs of stage 2 instead of 1 (2-teacher KD): does the cut student close the gap to
# the full-width one when both train longer?
if want prune-e3; then
  for s in $SEEDS; do
    train p-pruned-e3 "$s" "${PRUNED[@]}" --epochs 3
    train p-first3-e3 "$s" --student-from "$OUT/teachers/t1" --student-layers 3 --epochs 3
  done
  MODELS=()
  for s in $SEEDS; do for v in p-pruned-e3 p-first3-e3; do MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
  [ -f "$OUT/bench-quality-prune-e3.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-prune-e3.json"
fi

# Issue 15: stage-1 corpora of the same size from the same sources (WikiQA train questions and sentences,
# QNLI questions and sentences, MRPC/SST-2/SNLI sentences as extra passages; WikiQA dev/test excluded):
# BM25 top-4 per query, 4 random passages per query, and half of each. No original pairs in them
# (stage 2 has those). Stage 1 then the same stage 2 as r-point (2-teacher KD, no PKD: with PKD the
# narrow students' scores collapse, see RESULTS.md).
SOURCES=(--queries ../shared/datasets/glue/QNLI/dev.tsv:question --queries ../shared/datasets/glue/QNLI/test.tsv:question
  --passages ../shared/datasets/glue/QNLI/dev.tsv:sentence --passages ../shared/datasets/glue/QNLI/test.tsv:sentence
  --passages "../shared/datasets/glue/MRPC/train.tsv:#1 String,#2 String"
  --passages ../shared/datasets/glue/SST-2/train.tsv
  --passages ../shared/datasets/snli_sample/snli_1.0_dev.head.jsonl:sentence1,sentence2
  --exclude "$WIKIQA/WikiQA-dev.tsv" --exclude "$WIKIQA/WikiQA-test.tsv")
stage1() {  # stage1 NAME CORPUS SEED OPTIONS...: stage 1 on a labeled corpus, then r-point's stage 2
  local name=$1 corpus=$2 seed=$3; shift 3
  step "$OUT/students/$name-stage1-s$seed" "$name stage 1, seed $seed" bertdistill pretrain-student \
    --data "$OUT/corpora/$corpus.jsonl" --labels "$OUT/labels/$corpus" "${PRUNED[@]}" \
    --epochs "${STAGE1_EPOCHS:-1}" --batch-size 32 --lr 1e-4 --seed "$seed" "${FAST[@]}" --resume "$@" \
    --output "$OUT/students/$name-stage1-s$seed"
  train "$name" "$seed" --student-from "$OUT/students/$name-stage1-s$seed"
}
build_corpus() {  # build_corpus NAME RANDOM_RATIO: the corpus, its teacher labels and its statistics
  local name=$1 ratio=$2 c=$OUT/corpora/$1.jsonl
  mkdir -p "$OUT/corpora"
  step "$c" "corpus $name" bertdistill corpus "${TRAIN[@]}" "${SOURCES[@]}" --mine bm25 --top-k 4 \
    --random-ratio "$ratio" --no-include-originals --seed 0 --quiet --output "$c"
  step "$OUT/labels/$name" "label corpus $name" bertdistill label "${TEACHERS[@]}" --data "$c" --unlabeled \
    --max-length "$MAXLEN" --backend "$INFER_BACKEND" --quiet --output "$OUT/labels/$name"
  [ -f "$OUT/corpora/$name.stats.json" ] || bertdistill corpus --stats "$c" --labels "$OUT/labels/$name" \
    --json "$OUT/corpora/$name.stats.json" > "$OUT/corpora/$name.stats.txt"
}
if want corpus; then
  for kind in mined:0 random:1 mixed:0.5; do build_corpus "${kind%%:*}" "${kind##*:}"; done
  for s in $SEEDS; do
    stage1 c-mined mined "$s"
    stage1 c-random random "$s"
  done
  stage1 c-mixed mixed 1
  # The mined corpus at a third and two thirds of its size: the same run stopped after that many pairs
  # (one pass over a random subset of that size).
  rows=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['report']['total_pairs'])" "$OUT/corpora/mined.jsonl.meta.json")
  stage1 c-mined-third mined 1 --max-steps $((rows / 3 / 32))
  stage1 c-mined-twothirds mined 1 --max-steps $((rows * 2 / 3 / 32))
  # Test-set quality of the stage-1 study's students (merged with bench-quality.json by collect_study.py).
  CORPUS_MODELS=(--model "teacher-t1=$OUT/teachers/t1:$INFER_BACKEND")
  for d in "$OUT"/students/c-*-s[0-9]; do
    [ -f "$d/.complete" ] && case $d in *stage1*) ;; *) CORPUS_MODELS+=(--model "$(basename "$d")=$d:$INFER_BACKEND");; esac
  done
  [ -f "$OUT/bench-quality-corpus.json" ] || bertdistill bench "${CORPUS_MODELS[@]}" "${TEST[@]}" \
    --max-length "$MAXLEN" --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-corpus.json"
fi
# Three passes of stage 1 instead of one over the mined and the random corpus (the demo's narrow students
# needed several): does the mined corpus's lead grow when the student has time to learn what it teaches?
if want corpus-e3; then
  build_corpus mined 0; build_corpus random 1
  for s in $SEEDS; do
    STAGE1_EPOCHS=3 stage1 c-mined-e3 mined "$s"
    STAGE1_EPOCHS=3 stage1 c-random-e3 random "$s"
  done
  MODELS=()
  for s in $SEEDS; do for v in c-mined-e3 c-random-e3; do MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
  [ -f "$OUT/bench-quality-corpus-e3.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-corpus-e3.json"
fi
# Issue 21: the paper's comparison on the deployed student shape (the pruned 3L/256 student above), and the
# best pipeline. Fine-tuned only, KD from t1, PKD from t1 (projection started from the pruned dimensions),
# MKDM = r-point (2 teachers, one head each, stage 2 only), TMKD = c-mined-e3 (3 stage-1 passes over the
# BM25-mined corpus, then r-point's stage 2); best = TMKD's stage 1, then listwise KD (score head) for 3
# epochs instead of 1 (the best dev-MAP checkpoint is kept).
if want paper; then
  build_corpus mined 0
  for s in $SEEDS; do
    train r-point "$s" "${PRUNED[@]}"
    STAGE1_EPOCHS=3 stage1 c-mined-e3 mined "$s"
    step "$OUT/students/f-finetune-s$s" "fine-tuned only, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
      "${FAST[@]}" --epochs 1 --batch-size 32 --lr 1e-4 --seed "$s" --resume "${PRUNED[@]}" \
      --output "$OUT/students/f-finetune-s$s"
    train f-kd1 "$s" "${PRUNED[@]}" --teachers t1
    train f-pkd1 "$s" "${PRUNED[@]}" --teachers t1 "${PKD[@]}"
    train best "$s" --student-from "$OUT/students/c-mined-e3-stage1-s$s" "${LISTWISE[@]}" --epochs 3
  done
  MODELS=()
  for s in $SEEDS; do for v in f-finetune f-kd1 f-pkd1 best; do MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
  [ -f "$OUT/bench-quality-paper.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-paper.json"
  # The deployed student (best, seed 1) against teacher t1, every backend, one run: speed at batch 1 and 32,
  # and the test MAP each backend gives (what int8 or bf16 costs).
  deployed_bench students/best-s1 --data "$WIKIQA/WikiQA-dev.txt" --columns query,passage,label
fi
case $PART in all|final) ;; *) exit 0;; esac  # the parts above stop here; all and final go on

# Test-set quality of every model (bf16 inference where the CPU has it in hardware, else fp32: INFER_BACKEND), one bench run.
MODELS=(--model "teacher-t1=$OUT/teachers/t1:$INFER_BACKEND" --model "teacher-t2=$OUT/teachers/t2:$INFER_BACKEND")
for d in "$OUT"/students/*-s[0-9]; do
  [ -f "$d/.complete" ] && case $d in *stage1*) ;; *) MODELS+=(--model "$(basename "$d")=$d:$INFER_BACKEND");; esac
done
[ -f "$OUT/bench-quality.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality.json" --markdown "$OUT/bench-quality.md"

# Speed, one run, batch 1 and 32: teacher t1 and each student shape (seed 1) in fp32, bf16 and ONNX int8.
for m in teachers/t1 students/r-point-pkd-s1 students/p-first3-pkd-s1; do
  step "$OUT/onnx/$(basename "$m")" "export $m" bertdistill export --model "$OUT/$m" --int8 \
    --data "$WIKIQA/WikiQA-dev.txt" --columns query,passage,label --int8-min-agreement 0 --max-length "$MAXLEN" \
    --output "$OUT/onnx/$(basename "$m")"
done
SPEED=()
for m in teacher=teachers/t1 pruned=students/r-point-pkd-s1 first3=students/p-first3-pkd-s1; do
  name=${m%%=*}; dir=$OUT/${m#*=}; onnx=$OUT/onnx/$(basename "$dir")
  speed_rows SPEED "$name" "$dir" "$onnx"
done
[ -f "$OUT/bench-speed.json" ] || bertdistill bench "${SPEED[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-speed.json" --markdown "$OUT/bench-speed.md"
python examples/wikiqa/collect_study.py --out "$OUT" > "$OUT/STUDY.generated.md"
echo "results: $OUT/STUDY.generated.md"
