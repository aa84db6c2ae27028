#!/usr/bin/env bash
# The demo pipeline on the packaged MiniLM and the shipped demo QA data (300 query-passage pairs):
# teachers → corpus → label → pretrain-student (stage 1) → finetune (stage 2) → export → bench.
# Offline, about 5-10 minutes on 2 CPU cores. Steps whose output is complete are skipped, so an
# interrupted demo resumes; DEMO_OUT=dir picks the output folder (default runs/demo).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${DEMO_OUT:-runs/demo}
DATA=bertdistill/demo_data
TRAIN=(--data "$DATA/demo_qa_train.tsv" --group-column qid)
TEST=(--data "$DATA/demo_qa_test.tsv" --group-column qid)
COMMON=(--max-length 64 --mixed-precision bf16)
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

source examples/lib.sh  # step OUTPUT TITLE COMMAND...: skipped when OUTPUT is complete

# 1. Two teachers: the packaged 6-layer MiniLM fine-tuned with different seeds (and data orders).
for seed in 1 2; do
  step "$OUT/teachers/t$seed" "teacher t$seed: fine-tune MiniLM-L6 (seed $seed)" \
    bertdistill finetune "${TRAIN[@]}" --eval-data "$DATA/demo_qa_test.tsv" "${COMMON[@]}" \
      --epochs 4 --batch-size 16 --lr 5e-5 --seed "$seed" --output "$OUT/teachers/t$seed"
done
TEACHERS=(--teacher "t1=$OUT/teachers/t1" --teacher "t2=$OUT/teachers/t2")

# 2. Stage-1 corpus: every training query paired with passages of other queries too.
step "$OUT/corpus.jsonl" "corpus: enlarge the training pairs" \
  bertdistill corpus "${TRAIN[@]}" --negatives-per-query 12 --seed 0 --output "$OUT/corpus.jsonl"

# 3. Teachers label the corpus and the training set once, with [CLS] states for PKD-skip.
step "$OUT/labels/corpus" "label the corpus" \
  bertdistill label "${TEACHERS[@]}" --data "$OUT/corpus.jsonl" --unlabeled --max-length 64 \
    --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/corpus"
step "$OUT/labels/train" "label the training set" \
  bertdistill label "${TEACHERS[@]}" "${TRAIN[@]}" --max-length 64 \
    --backend bf16 --hidden-layers skip --student-layers 3 --output "$OUT/labels/train"

# 4. Stage 1: a 3-layer student (first 3 layers of the pre-trained MiniLM) imitates both teachers.
step "$OUT/student-stage1" "pretrain-student (stage 1, TMKD heads + PKD)" \
  bertdistill pretrain-student --data "$OUT/corpus.jsonl" --labels "$OUT/labels/corpus" \
    --student-layers 3 --pkd skip --epochs 2 --batch-size 32 "${COMMON[@]}" --output "$OUT/student-stage1"

# 5. Stage 2: fine-tune on the task against both teachers and the gold labels.
step "$OUT/student" "finetune the student (stage 2)" \
  bertdistill finetune "${TRAIN[@]}" --labels "$OUT/labels/train" --eval-data "$DATA/demo_qa_test.tsv" \
    --student-from "$OUT/student-stage1" --pkd skip --epochs 4 --batch-size 16 --lr 1e-4 "${COMMON[@]}" \
    --output "$OUT/student"

# 6. Export to ONNX (fp32 and int8), checked against PyTorch on the test rows.
step "$OUT/student-onnx" "export the student to ONNX" \
  bertdistill export --model "$OUT/student" "${TEST[@]}" --int8 --output "$OUT/student-onnx"

# 7. Teachers and student side by side, on the same data and machine.
# The teacher's bf16 row: read the student's speedup against the teacher's fastest backend too.
bertdistill bench --model "teacher-t1=$OUT/teachers/t1" --model "teacher-t1-bf16=$OUT/teachers/t1:bf16" \
  --model "student=$OUT/student" --model "student-bf16=$OUT/student:bf16" \
  --model "student-onnx-int8=$OUT/student-onnx:onnx-int8" \
  "${TEST[@]}" --max-length 64 --batch-sizes 1,32 --threads 2 --repeats 3 \
  --json "$OUT/bench.json" --markdown "$OUT/bench.md" --plot "$OUT/bench.png"

echo
echo "Exported student: $OUT/student-onnx (model.onnx, model_quantized.onnx, tokenizer, export_report.json)"
