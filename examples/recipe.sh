# The recipe shared by examples/<task>/run.sh: three MiniLM-6L teachers, the same 3-layer student five
# ways (fine-tuned only, KD, PKD, MKDM, TMKD) over several seeds, ONNX exports, and two bench runs
# (quality of every model; speed in PyTorch fp32, ONNX fp32, ONNX int8). Every step skips when its
# output is complete, so a recipe can be run in parts and resumed.
#
# The task script sets: TASK, OUT, TRAIN (array: training data options), DEV (array: --eval-data FILE
# sharing the training mapping, --eval-split NAME of a hub data set, or --eval-data-config JSON),
# EXPORT_DATA (array: parity rows for export), TEST (array: bench data), METRIC (main metric: map or
# accuracy). Knobs with defaults below: SEEDS, TEACHER_EPOCHS, STUDENT_EPOCHS, MAXLEN, CORPUS_K, ALPHA,
# INT8_MIN_AGREEMENT (export refuses an int8 model whose argmax agrees with fp32 on fewer dev rows).
set -euo pipefail
SEEDS=${SEEDS:-1 2 3}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-2}
MAXLEN=${MAXLEN:-64}
CORPUS_K=${CORPUS_K:-4}
ALPHA=${ALPHA:-0.7}
INT8_MIN_AGREEMENT=${INT8_MIN_AGREEMENT:-0.99}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
FAST=(--max-length "$MAXLEN" --mixed-precision bf16)
STUDENT=(--student-layers 3)  # first 3 layers of the pre-trained (not fine-tuned) MiniLM
source examples/lib.sh

# Teachers: the 6-layer MiniLM fine-tuned with three seeds (different head inits and data orders).
for t in 1 2 3; do
  step "$OUT/teachers/t$t" "teacher t$t" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" "${FAST[@]}" \
    --epochs "$TEACHER_EPOCHS" --batch-size 32 --lr 5e-5 --seed "$t" --resume --output "$OUT/teachers/t$t"
done
ALL=(--teacher "t1=$OUT/teachers/t1" --teacher "t2=$OUT/teachers/t2" --teacher "t3=$OUT/teachers/t3")

# Teacher outputs, once: the training set and an enlarged, unlabeled stage-1 corpus (with PKD-skip states).
step "$OUT/labels/train" "label train" bertdistill label "${ALL[@]}" "${TRAIN[@]}" --max-length "$MAXLEN" \
  --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/train"
step "$OUT/corpus.jsonl" "corpus" bertdistill corpus "${TRAIN[@]}" --negatives-per-query "$CORPUS_K" \
  --seed 0 --output "$OUT/corpus.jsonl"
step "$OUT/labels/corpus" "label corpus" bertdistill label "${ALL[@]}" --data "$OUT/corpus.jsonl" --unlabeled \
  --max-length "$MAXLEN" --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/corpus"

# The same 3-layer student, five ways, per seed.
for s in $SEEDS; do
  S=(--seed "$s" --epochs "$STUDENT_EPOCHS" --batch-size 32 --lr 1e-4 --resume)
  KD=(--labels "$OUT/labels/train" --alpha "$ALPHA")
  step "$OUT/students/a-finetune-s$s" "(a) fine-tuned only, seed $s" bertdistill finetune "${TRAIN[@]}" \
    "${DEV[@]}" "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" --output "$OUT/students/a-finetune-s$s"
  step "$OUT/students/b-kd-s$s" "(b) KD from t1, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" "${KD[@]}" --teachers t1 --output "$OUT/students/b-kd-s$s"
  step "$OUT/students/c-pkd-s$s" "(c) PKD from t1, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" "${KD[@]}" --teachers t1 --pkd skip --output "$OUT/students/c-pkd-s$s"
  step "$OUT/students/d-mkdm-s$s" "(d) MKDM: 3 teachers, stage 2 only, seed $s" bertdistill finetune \
    "${TRAIN[@]}" "${DEV[@]}" "${FAST[@]}" "${S[@]}" "${STUDENT[@]}" "${KD[@]}" --teacher-mode heads \
    --output "$OUT/students/d-mkdm-s$s"
  step "$OUT/students/e-stage1-s$s" "(e) TMKD stage 1, seed $s" bertdistill pretrain-student \
    --data "$OUT/corpus.jsonl" --labels "$OUT/labels/corpus" "${STUDENT[@]}" --pkd skip --epochs 1 \
    --batch-size 32 --lr 1e-4 --seed "$s" "${FAST[@]}" --resume --output "$OUT/students/e-stage1-s$s"
  step "$OUT/students/e-tmkd-s$s" "(e) TMKD stage 2, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" "${S[@]}" "${KD[@]}" --student-from "$OUT/students/e-stage1-s$s" --teacher-mode heads \
    --pkd skip --output "$OUT/students/e-tmkd-s$s"
done

# ONNX exports (fp32 + int8, parity-checked on real rows) of teacher t1 and the first seed's students.
FIRST=${SEEDS%% *}
for m in teachers/t1 students/a-finetune-s$FIRST students/e-tmkd-s$FIRST; do
  dest=$OUT/onnx/$(basename "$m")
  step "$dest" "export $m" bertdistill export --model "$OUT/$m" --int8 "${EXPORT_DATA[@]}" \
    --int8-min-agreement "$INT8_MIN_AGREEMENT" --max-length "$MAXLEN" --output "$dest" || echo "   export of $m refused (report in $dest.failed)"
done

# Quality of every model on the test set (bf16 inference; same ranking within ~1e-3 of fp32).
MODELS=()
for t in 1 2 3; do MODELS+=(--model "teacher-t$t=$OUT/teachers/t$t:bf16"); done
for s in $SEEDS; do for v in a-finetune b-kd c-pkd d-mkdm e-tmkd; do
  MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:bf16"); done; done
[ -f "$OUT/bench-quality.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality.json" \
  --markdown "$OUT/bench-quality.md"

# Speed: teacher and students in PyTorch fp32, ONNX fp32 and ONNX int8, interleaved in one run.
SPEED=(--model "teacher=$OUT/teachers/t1")
for m in t1:teacher a-finetune-s$FIRST:finetune-only e-tmkd-s$FIRST:tmkd; do
  src=${m%%:*}; name=${m##*:}; dir=$OUT/onnx/$src
  [ "$name" != teacher ] && SPEED+=(--model "$name=$OUT/students/$src")
  [ -f "$dir/.complete" ] && SPEED+=(--model "$name-onnx=$dir:onnx" --model "$name-int8=$dir:onnx-int8")
done
[ -f "$OUT/bench-speed.json" ] || bertdistill bench "${SPEED[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-speed.json" \
  --markdown "$OUT/bench-speed.md" --plot "$OUT/bench-speed.png"

python examples/collect_results.py --task "$TASK" --out "$OUT" --metric "$METRIC" > "$OUT/RESULTS.generated.md"
echo "results: $OUT/RESULTS.generated.md"
