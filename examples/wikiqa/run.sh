#!/usr/bin/env bash
# WikiQA recipe: three MiniLM-6L teachers, the same 3-layer student five ways (fine-tuned only, KD,
# PKD, MKDM, TMKD), over several seeds, then bench (PyTorch fp32, ONNX fp32, ONNX int8) on WikiQA test.
# Every step skips when its output is complete, so the recipe can be run in parts and resumed.
#
#   WIKIQA=../shared/datasets/wikiqa OUT=runs/wikiqa bash examples/wikiqa/run.sh
#
# Knobs (environment): WIKIQA (folder with WikiQA-train.txt, -dev.txt, -test.tsv), OUT, LIMIT (training
# rows used, default all), SEEDS (default "1 2 3"), TEACHER_EPOCHS, STUDENT_EPOCHS, MAXLEN, CORPUS_K.
# Hub users: put the hub's wiki_qa in the same three files, or change TRAIN/DEV/TEST to --dataset options.
set -euo pipefail
cd "$(dirname "$0")/../.."
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
OUT=${OUT:-runs/wikiqa}
SEEDS=${SEEDS:-1 2 3}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-1}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-2}
MAXLEN=${MAXLEN:-64}        # WikiQA pairs: p95 67 tokens, p99 89
CORPUS_K=${CORPUS_K:-4}
LIMIT_OPT=(); [ -n "${LIMIT:-}" ] && LIMIT_OPT=(--limit "$LIMIT")
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false

TRAIN=(--data "$WIKIQA/WikiQA-train.txt" --columns query,passage,label --task ranking "${LIMIT_OPT[@]}")
DEV=(--eval-data "$WIKIQA/WikiQA-dev.txt")                  # same headerless format as train
TEST=(--data "$WIKIQA/WikiQA-test.tsv" --group-column QuestionID)
FAST=(--max-length "$MAXLEN" --mixed-precision bf16)
STUDENT=(--student-layers 3)                                 # first 3 layers of the pre-trained MiniLM

source examples/lib.sh  # step OUTPUT TITLE COMMAND...: skipped when OUTPUT is complete

# Teachers: the 6-layer MiniLM fine-tuned with three seeds (different inits of the head and data orders).
for t in 1 2 3; do
  step "$OUT/teachers/t$t" "teacher t$t" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" "${FAST[@]}" \
    --epochs "$TEACHER_EPOCHS" --batch-size 32 --lr 5e-5 --seed "$t" --resume --output "$OUT/teachers/t$t"
done
ALL=(--teacher "t1=$OUT/teachers/t1" --teacher "t2=$OUT/teachers/t2" --teacher "t3=$OUT/teachers/t3")

# Teacher outputs, once: training set and an enlarged, unlabeled stage-1 corpus (with PKD-skip states).
step "$OUT/labels/train" "label train" bertdistill label "${ALL[@]}" "${TRAIN[@]}" --max-length "$MAXLEN" \
  --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/train"
step "$OUT/corpus.jsonl" "corpus" bertdistill corpus "${TRAIN[@]}" --negatives-per-query "$CORPUS_K" \
  --seed 0 --output "$OUT/corpus.jsonl"
step "$OUT/labels/corpus" "label corpus" bertdistill label "${ALL[@]}" --data "$OUT/corpus.jsonl" --unlabeled \
  --max-length "$MAXLEN" --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/corpus"

# The same 3-layer student, five ways, per seed.
for s in $SEEDS; do
  S=(--seed "$s" --epochs "$STUDENT_EPOCHS" --batch-size 32 --lr 1e-4 --resume)
  step "$OUT/students/a-finetune-s$s" "(a) fine-tuned only, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" --output "$OUT/students/a-finetune-s$s"
  step "$OUT/students/b-kd-s$s" "(b) KD from t1, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" --labels "$OUT/labels/train" --teachers t1 --alpha 0.7 \
    --output "$OUT/students/b-kd-s$s"
  step "$OUT/students/c-pkd-s$s" "(c) PKD from t1, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" --labels "$OUT/labels/train" --teachers t1 --alpha 0.7 \
    --pkd skip --output "$OUT/students/c-pkd-s$s"
  step "$OUT/students/d-mkdm-s$s" "(d) MKDM: 3 teachers, stage 2 only, seed $s" bertdistill finetune "${TRAIN[@]}" \
    "${DEV[@]}" "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" --labels "$OUT/labels/train" --teacher-mode heads \
    --alpha 0.7 --output "$OUT/students/d-mkdm-s$s"
  step "$OUT/students/e-stage1-s$s" "(e) TMKD stage 1, seed $s" bertdistill pretrain-student \
    --data "$OUT/corpus.jsonl" --labels "$OUT/labels/corpus" "${STUDENT[@]}" --pkd skip --epochs 1 \
    --batch-size 32 --lr 1e-4 --seed "$s" "${FAST[@]}" --resume --output "$OUT/students/e-stage1-s$s"
  step "$OUT/students/e-tmkd-s$s" "(e) TMKD stage 2, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" --student-from "$OUT/students/e-stage1-s$s" --labels "$OUT/labels/train" \
    --teacher-mode heads --alpha 0.7 --pkd skip --output "$OUT/students/e-tmkd-s$s"
done

# ONNX exports (fp32 + int8, parity-checked on dev rows) of teacher t1 and the first seed's students.
FIRST=${SEEDS%% *}
for m in teachers/t1 students/a-finetune-s$FIRST students/e-tmkd-s$FIRST; do
  step "$OUT/onnx/$(basename "$m")" "export $m" bertdistill export --model "$OUT/$m" --int8 \
    --data "$WIKIQA/WikiQA-dev.txt" --columns query,passage,label --max-length "$MAXLEN" \
    --output "$OUT/onnx/$(basename "$m")" || echo "   export of $m refused (see $OUT/onnx/$(basename "$m").failed)"
done

# Accuracy of every model (bf16 inference, same numbers within ~1e-3) on WikiQA test.
MODELS=()
for t in 1 2 3; do MODELS+=(--model "teacher-t$t=$OUT/teachers/t$t:bf16"); done
for s in $SEEDS; do for v in a-finetune b-kd c-pkd d-mkdm e-tmkd; do
  MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:bf16"); done; done
bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" --batch-sizes 32 --repeats 1 --warmup 1 \
  --threads 2 --json "$OUT/bench-quality.json" --markdown "$OUT/bench-quality.md"

# Speed: teacher and students in PyTorch fp32, ONNX fp32, ONNX int8, interleaved in one run.
SPEED=(--model "teacher=$OUT/teachers/t1")
for m in t1:teacher a-finetune-s$FIRST:finetune-only e-tmkd-s$FIRST:tmkd; do
  src=${m%%:*}; name=${m##*:}; dir=$OUT/onnx/$src
  [ "$name" != teacher ] && SPEED+=(--model "$name=$OUT/students/$src")
  [ -f "$dir/.complete" ] && SPEED+=(--model "$name-onnx=$dir:onnx" --model "$name-int8=$dir:onnx-int8")
done
bertdistill bench "${SPEED[@]}" "${TEST[@]}" --max-length "$MAXLEN" --batch-sizes 1,32 --repeats 10 \
  --threads 2 --json "$OUT/bench-speed.json" --markdown "$OUT/bench-speed.md" --plot "$OUT/bench-speed.png"

python examples/collect_results.py --task wikiqa --out "$OUT" --metric map > "$OUT/RESULTS.generated.md"
echo "results: $OUT/RESULTS.generated.md"
