#!/usr/bin/env bash
# The papers' real setting (issue 29): 12-layer MPNet-base teachers (the packaged all-mpnet-base-v2, 110M
# parameters; `make install-mpnet`) compressed into smaller students of another family and vocabulary,
# on MRPC, RTE and WikiQA. Every step skips when its output is complete, so it runs in parts:
#   TASK=mrpc|rte|wikiqa PART=teachers|labels|paper|family|small|deployed|all bash examples/mpnet/run.sh
#   TEACHER_SEEDS=1 (default "1 2"): one MPNet teacher, a shorter cut (its own label store; KD and PKD only)
#   then: python examples/mpnet/collect.py --out runs/mpnet-$TASK --task $TASK > runs/mpnet-$TASK/RESULTS.generated.md
# Teachers: MPNet-base fine-tuned with seeds 1 and 2 (RTE: after one epoch of QNLI's labeled dev set, the
# only large entailment set here). Students, all from one label store of both teachers' outputs:
#   (a) the packaged MiniLM-L6 (6 layers, width 384, BERT vocabulary): the paper's comparison on it, 3 seeds:
#       fine-tuned only, KD (t1), PKD (t1, skip map), MKDM (t1 + t2, one head each), TMKD (stage 1 on a
#       BM25-mined corpus labeled by both teachers, then MKDM);
#   (b) MPNet's own layers (PKD's setting): 6 and 3 layers of teacher t1 (skip map), KD + PKD;
#   (c) smaller and faster: MiniLM-L6's first 3 layers, TMKD.
# Student options are the defaults (epochs, learning rate) except where a line says otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
TASK=${TASK:?TASK=mrpc, rte or wikiqa}
PART=${PART:-all}
OUT=${OUT:-runs/mpnet-$TASK}
SEEDS=${SEEDS:-1 2 3}
TEACHER_SEEDS=${TEACHER_SEEDS:-1 2}  # "1": one MPNet teacher (KD and PKD only; MKDM and TMKD need two)
GLUE=${GLUE:-../shared/datasets/glue}
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
SNLI=${SNLI:-../shared/datasets/snli_sample}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
want() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }

case $TASK in
  mrpc)
    MAXLEN=128; TEACHER_EPOCHS=3
    TRAIN=(--data "$GLUE/MRPC/train.tsv"); DEV=(--eval-data "$GLUE/MRPC/dev.tsv")
    TEST=(--data "$GLUE/MRPC/msr_paraphrase_test.txt")          # the labeled MSRP test file
    PARITY=(--data "$GLUE/MRPC/dev.tsv")
    CORPUS=(--queries "$GLUE/MRPC/train.tsv:#2 String" --passages "$GLUE/QNLI/dev.tsv:sentence"
      --passages "$GLUE/SST-2/train.tsv" --passages "$SNLI/snli_1.0_dev.head.jsonl:sentence1,sentence2"
      --exclude "$GLUE/MRPC/dev.tsv:#1 String,#2 String" --exclude "$GLUE/MRPC/msr_paraphrase_test.txt:#1 String,#2 String")
    ;;
  rte)
    # GLUE's RTE test set has no labels: the students are tested on the dev set and choose their
    # checkpoint on a dev split held out of the training data (the default when no --eval-data is given).
    MAXLEN=128; TEACHER_EPOCHS=3
    TRAIN=(--data "$GLUE/RTE/train.tsv"); DEV=(--eval-data "$GLUE/RTE/dev.tsv")
    TEST=(--data "$GLUE/RTE/dev.tsv"); PARITY=(--data "$GLUE/RTE/dev.tsv")
    CORPUS=(--passages "$SNLI/snli_1.0_dev.head.jsonl:sentence2" --passages "$SNLI/snli_1.0_test.head.jsonl:sentence2"
      --passages "$GLUE/QNLI/dev.tsv:sentence" --exclude "$GLUE/RTE/dev.tsv:sentence1,sentence2")
    ;;
  wikiqa)
    MAXLEN=64; TEACHER_EPOCHS=1
    TRAIN=(--data "$WIKIQA/WikiQA-train.txt" --columns query,passage,label --task ranking)
    DEV=(--eval-data "$WIKIQA/WikiQA-dev.txt")
    TEST=(--data "$WIKIQA/WikiQA-test.tsv" --group-column QuestionID)
    PARITY=(--data "$WIKIQA/WikiQA-dev.txt" --columns query,passage,label)
    CORPUS=(--queries ../shared/datasets/glue/QNLI/dev.tsv:question --passages "$GLUE/QNLI/dev.tsv:sentence"
      --passages "$GLUE/MRPC/train.tsv:#1 String,#2 String" --passages "$GLUE/SST-2/train.tsv"
      --passages "$SNLI/snli_1.0_dev.head.jsonl:sentence1,sentence2"
      --exclude "$WIKIQA/WikiQA-dev.tsv" --exclude "$WIKIQA/WikiQA-test.tsv")
    ;;
  *) echo "TASK must be mrpc, rte or wikiqa" >&2; exit 2;;
esac
FAST=(--max-length "$MAXLEN" --mixed-precision auto)  # bf16 where the CPU has it in hardware

# -- teachers: MPNet-base, seeds 1 and 2 ------------------------------------------------------------
TEACHER_FROM=mpnet-base
if [ "$TASK" = rte ]; then
  step "$OUT/teachers/qnli" "MPNet-base on QNLI dev (intermediate task)" bertdistill finetune \
    --data "$GLUE/QNLI/dev.tsv" "${FAST[@]}" --model mpnet-base --epochs 1 --batch-size 16 --lr 2e-5 --seed 1 \
    --no-eval --resume --output "$OUT/teachers/qnli"
  TEACHER_FROM=$OUT/teachers/qnli
fi
TEACHER_EVAL=("${DEV[@]}")
[ "$TASK" = rte ] && TEACHER_EVAL=()  # RTE's dev set is its test set: checkpoints are picked on a training split
for t in $TEACHER_SEEDS; do
  step "$OUT/teachers/t$t" "teacher t$t" bertdistill finetune "${TRAIN[@]}" "${TEACHER_EVAL[@]}" "${FAST[@]}" \
    --model "$TEACHER_FROM" --epochs "$TEACHER_EPOCHS" --batch-size 16 --lr 2e-5 --seed "$t" --resume \
    --output "$OUT/teachers/t$t"
done
TEACHERS=(); for t in $TEACHER_SEEDS; do TEACHERS+=(--teacher "t$t=$OUT/teachers/t$t"); done
TWO=$([ "${#TEACHERS[@]}" -ge 4 ] && echo yes || echo no)
LABELDIR=$OUT/labels; [ "$TWO" = yes ] || LABELDIR=$OUT/labels-t${TEACHER_SEEDS// /-}  # a store per teacher set
want teachers && exit 0

# -- the teachers' outputs, once: logits and the [CLS] states PKD-skip needs for 6 and 3 student layers -----
step "$LABELDIR/train" "label train" bertdistill label "${TEACHERS[@]}" "${TRAIN[@]}" --max-length "$MAXLEN" \
  --backend "$INFER_BACKEND" --hidden-layers 2,4,6,8,10 --quiet --output "$LABELDIR/train"
c=$OUT/corpora/mined.jsonl
if [ "$TWO" = yes ]; then  # stage 1 of TMKD: the corpus and both teachers' outputs on it
  mkdir -p "$OUT/corpora"
  step "$c" "corpus mined" bertdistill corpus "${TRAIN[@]}" "${CORPUS[@]}" --mine bm25 --top-k 4 \
    --no-include-originals --seed 0 --quiet --output "$c"
  step "$OUT/labels/mined" "label corpus mined" bertdistill label "${TEACHERS[@]}" --data "$c" --unlabeled \
    --max-length "$MAXLEN" --backend "$INFER_BACKEND" --quiet --output "$OUT/labels/mined"
  [ -f "$OUT/corpora/mined.stats.json" ] || bertdistill corpus --stats "$c" --labels "$OUT/labels/mined" \
    --json "$OUT/corpora/mined.stats.json" > "$OUT/corpora/mined.stats.txt"
fi
want labels && exit 0

EVAL=("${TEACHER_EVAL[@]}")
student() {  # student NAME SEED OPTIONS...: one stage-2 run with the measured defaults
  local name=$1 seed=$2; shift 2
  step "$OUT/students/$name-s$seed" "$name, seed $seed" bertdistill finetune "${TRAIN[@]}" "${EVAL[@]}" \
    "${FAST[@]}" --seed "$seed" --resume "$@" --output "$OUT/students/$name-s$seed"
}
stage1() {  # stage1 NAME SEED OPTIONS...: TMKD's stage 1 on the mined corpus (both teachers, one head each)
  local name=$1 seed=$2; shift 2
  step "$OUT/students/$name-s$seed" "$name, seed $seed" bertdistill pretrain-student --data "$c" \
    --labels "$OUT/labels/mined" "${FAST[@]}" --epochs 2 --seed "$seed" --resume "$@" \
    --output "$OUT/students/$name-s$seed"
}
LABELS=(--labels "$LABELDIR/train")
MINILM=(--student-from minilm-l6)

# -- (a) the paper's comparison on the MiniLM-L6 student ----------------------------------------------
if want paper; then
  for s in $SEEDS; do
    student a-finetune "$s" --model minilm-l6
    student a-kd "$s" "${LABELS[@]}" "${MINILM[@]}" --teachers t1
    student a-pkd "$s" "${LABELS[@]}" "${MINILM[@]}" --teachers t1 --pkd skip
    [ "$TWO" = yes ] || continue  # MKDM and TMKD: two teachers, one head each
    student a-mkdm "$s" "${LABELS[@]}" "${MINILM[@]}"
    stage1 a-tmkd-stage1 "$s" "${MINILM[@]}"
    student a-tmkd "$s" "${LABELS[@]}" --student-from "$OUT/students/a-tmkd-stage1-s$s"
  done
fi
# -- (b) MPNet's own layers (PKD's setting): 6 and 3 layers of teacher t1, skip map, KD + PKD ------------
if want family; then
  for s in $SEEDS; do
    student b-mpnet6 "$s" "${LABELS[@]}" --student-from "$OUT/teachers/t1" --student-layers 6 --layer-map skip --pkd skip
  done
  student b-mpnet3 1 "${LABELS[@]}" --student-from "$OUT/teachers/t1" --student-layers 3 --layer-map skip --pkd skip
fi
# -- (c) smaller: MiniLM-L6's first 3 layers, TMKD ----------------------------------------------------
if want small && [ "$TWO" = yes ]; then
  for s in $SEEDS; do
    stage1 c-tmkd3-stage1 "$s" "${MINILM[@]}" --student-layers 3
    student c-tmkd3 "$s" "${LABELS[@]}" --student-from "$OUT/students/c-tmkd3-stage1-s$s"
  done
fi

# -- test-set quality of every model (bf16 inference where the CPU has it in hardware, else fp32: INFER_BACKEND), one bench run; then the deployed students ---------
if want deployed; then
  MODELS=(); for t in $TEACHER_SEEDS; do MODELS+=(--model "teacher-t$t=$OUT/teachers/t$t:$INFER_BACKEND"); done
  for d in "$OUT"/students/*-s[0-9]; do
    [ -f "$d/.complete" ] && case $d in *stage1*) ;; *) MODELS+=(--model "$(basename "$d")=$d:$INFER_BACKEND");; esac
  done
  [ -f "$OUT/bench-quality.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality.json" --markdown "$OUT/bench-quality.md"
  # Speed and the metric each backend gives, one run: teacher t1 and the deployed students (seed 1) in
  # PyTorch fp32, bf16 and ONNX int8, at batch 1 and 32.
  DEPLOYED=${DEPLOYED:-a-tmkd b-mpnet6 c-tmkd3}
  SPEED=()
  for m in teachers/t1 $(for v in $DEPLOYED; do echo "students/$v-s1"; done); do
    [ -f "$OUT/$m/.complete" ] || continue
    step "$OUT/onnx/$(basename "$m")" "export $m" bertdistill export --model "$OUT/$m" --int8 "${PARITY[@]}" \
      --int8-min-agreement 0 --max-length "$MAXLEN" --output "$OUT/onnx/$(basename "$m")"
    name=$(basename "$m"); name=${name%-s1}
    speed_rows SPEED "$name" "$OUT/$m" "$OUT/onnx/$(basename "$m")"
  done
  [ -f "$OUT/bench-deployed.json" ] || bertdistill bench "${SPEED[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-deployed.json" --markdown "$OUT/bench-deployed.md" \
    --plot "$OUT/bench-deployed.png"
fi
