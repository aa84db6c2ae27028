#!/usr/bin/env bash
# The demo: the whole method on the packaged MiniLM and the shipped demo QA data, offline, in about
# 5 minutes on 2 CPU cores:
#   two teachers → BM25-mined stage-1 corpus → labels → a narrow student pruned from a teacher →
#   stage 1 (imitate the teachers on the corpus) → stage 2 (task + both teachers) → ONNX export → bench,
#   and a verdict: the student's share of the teacher's MAP at its fastest backend against the teacher's fastest.
# Steps whose output is complete are skipped, so an interrupted demo resumes; DEMO_OUT=dir picks the output
# folder (default runs/demo).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${DEMO_OUT:-runs/demo}
DATA=bertdistill/demo_data
TRAIN=(--data "$DATA/demo_qa_train.tsv" --group-column qid)
TEST=(--data "$DATA/demo_qa_test.tsv" --group-column qid)
LEN=48  # every demo text pair fits in 48 tokens
FAST=(--max-length "$LEN" --mixed-precision bf16)
# The student: 2 of the teacher's 6 layers, hidden width 256 of 384, 8 of 12 heads, 1024 of 1536 FFN neurons
# (15% of the teacher's FLOPs per example).
SHAPE=(--layers 2 --layer-map skip --hidden 256 --heads 8 --ffn 1024)
# A ranking student: one relevance score per pair, taught each question's whole ranking of its candidates by
# both teachers (listwise KD, one head per teacher), as in the WikiQA study (examples/wikiqa/RESULTS.md).
RANK=(--head score --term kd=0)
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
source examples/lib.sh  # step OUTPUT TITLE COMMAND...: skipped when OUTPUT is complete
start=$(date +%s)

# 1. Two teachers: the packaged 6-layer MiniLM fine-tuned with different seeds (and data orders). Each
#    holds out 10% of the training questions as its dev set and keeps its best checkpoint.
for seed in 1 2; do
  step "$OUT/teachers/t$seed" "teacher t$seed: fine-tune MiniLM-L6 (seed $seed)" \
    bertdistill finetune "${TRAIN[@]}" "${FAST[@]}" --epochs 2 --batch-size 16 --lr 1e-4 --seed "$seed" \
      --output "$OUT/teachers/t$seed"
done
TEACHERS=(--teacher "t1=$OUT/teachers/t1" --teacher "t2=$OUT/teachers/t2")

# 2. Stage-1 corpus: more questions and passages without labels (demo_questions.txt, demo_passages.txt),
#    each question paired with its 8 best BM25 passages: hard pairs, where the teachers have something to
#    teach. The test questions and passages are kept out.
step "$OUT/corpus.jsonl" "corpus: BM25-mined question-passage pairs" \
  bertdistill corpus "${TRAIN[@]}" --queries "$DATA/demo_questions.txt" --passages "$DATA/demo_passages.txt" \
    --mine bm25 --top-k 8 --no-include-originals --exclude "$DATA/demo_qa_test.tsv" --seed 0 --quiet \
    --output "$OUT/corpus.jsonl"

# 3. The teachers label the corpus and the training set once.
step "$OUT/labels/corpus" "label the corpus" \
  bertdistill label "${TEACHERS[@]}" --data "$OUT/corpus.jsonl" --unlabeled --max-length "$LEN" --backend bf16 \
    --quiet --output "$OUT/labels/corpus"
step "$OUT/labels/train" "label the training set" \
  bertdistill label "${TEACHERS[@]}" "${TRAIN[@]}" --max-length "$LEN" --backend bf16 --quiet \
    --output "$OUT/labels/train"

# 4. The narrow student, cut from teacher t1: the layers, heads, FFN neurons and hidden dimensions that
#    matter most on 600 training pairs (scored against t1's own predictions).
step "$OUT/student-pruned" "prune t1 to 2 layers / 256 wide" \
  bertdistill prune --model "$OUT/teachers/t1" "${TRAIN[@]}" --limit 600 "${SHAPE[@]}" --max-length "$LEN" \
    --quiet --output "$OUT/student-pruned"

# 5. Stage 1: the student learns to rank the corpus as both teachers do.
step "$OUT/student-stage1" "pretrain-student (stage 1 on the mined corpus)" \
  bertdistill pretrain-student --data "$OUT/corpus.jsonl" --task ranking --labels "$OUT/labels/corpus" \
    --student-from "$OUT/student-pruned" "${RANK[@]}" --term listwise_kd=1 --epochs 4 --batch-size 32 --lr 3e-4 \
    "${FAST[@]}" \
    --output "$OUT/student-stage1"

# 6. Stage 2: the task's gold answers and both teachers.
step "$OUT/student" "finetune the student (stage 2)" \
  bertdistill finetune "${TRAIN[@]}" --labels "$OUT/labels/train" --student-from "$OUT/student-stage1" \
    "${RANK[@]}" --term listwise_kd=0.5 --epochs 3 --batch-size 32 --lr 1e-4 "${FAST[@]}" --output "$OUT/student"

# 7. ONNX (fp32 and int8) for the student and, to time its fastest backend, teacher t1; parity-checked
#    (int8 must keep the order of 95% of the test pairs; the bench below shows what it costs in MAP).
for m in student teachers/t1; do
  step "$OUT/onnx/$(basename "$m")" "export $m to ONNX" \
    bertdistill export --model "$OUT/$m" "${TEST[@]}" --int8 --int8-min-agreement 0.95 --max-length "$LEN" \
      --output "$OUT/onnx/$(basename "$m")"
done

# 8. Teacher and student side by side on every backend, in one run, on the test questions (which no
#    model has seen). Ends with each model at its fastest backend.
bertdistill bench --model "teacher=$OUT/teachers/t1" --model "teacher-bf16=$OUT/teachers/t1:bf16" \
  --model "teacher-int8=$OUT/onnx/t1:onnx-int8" \
  --model "student=$OUT/student" --model "student-bf16=$OUT/student:bf16" \
  --model "student-int8=$OUT/onnx/student:onnx-int8" \
  "${TEST[@]}" --max-length "$LEN" --batch-sizes 1,32 --threads 2 --repeats 20 --overwrite \
  --json "$OUT/bench.json" --markdown "$OUT/bench.md" --plot "$OUT/bench.png"

python examples/demo/verdict.py "$OUT/bench.json" --seconds $(( $(date +%s) - start ))
echo "Exported student: $OUT/onnx/student (model.onnx, model_quantized.onnx, tokenizer, export_report.json)"
