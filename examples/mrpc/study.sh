#!/usr/bin/env bash
# MRPC part of issue 14's study: the same stage-2 distillation (2-teacher KD + PKD-skip, and 2-teacher KD
# alone, since PKD through a width projection collapsed the narrow WikiQA students) on three students of
# about the same budget: (a) pruned from teacher t1 to 3 layers / width 256 / 8 heads / FFN 1024, (b) that
# shape randomly initialized, (c) the first 3 layers of t1 at full width. Every step skips when its output
# is complete.   GLUE=../shared/datasets/glue OUT=runs/mrpc-study bash examples/mrpc/study.sh
# PART=paper runs issue 21's paper comparison and best pipeline only (after the teachers and the prune).
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
GLUE=${GLUE:-../shared/datasets/glue}
OUT=${OUT:-runs/mrpc-study}
SEEDS=${SEEDS:-1 2 3}
MAXLEN=${MAXLEN:-96}                                  # MRPC pairs: longer than WikiQA's
STUDENT_EPOCHS=${STUDENT_EPOCHS:-3}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
TRAIN=(--data "$GLUE/MRPC/train.tsv")
DEV=(--eval-data "$GLUE/MRPC/dev.tsv")
TEST=(--data "$GLUE/MRPC/msr_paraphrase_test.txt")    # the labeled MSRP test file
FAST=(--max-length "$MAXLEN" --mixed-precision auto)  # bf16 where the CPU has it in hardware

for t in 1 2; do
  step "$OUT/teachers/t$t" "teacher t$t" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" "${FAST[@]}" \
    --epochs 2 --batch-size 32 --lr 5e-5 --seed "$t" --resume --output "$OUT/teachers/t$t"
done
step "$OUT/labels/train" "label train" bertdistill label --teacher "t1=$OUT/teachers/t1" \
  --teacher "t2=$OUT/teachers/t2" "${TRAIN[@]}" --max-length "$MAXLEN" --backend "$INFER_BACKEND" --hidden-layers skip \
  --student-layers 3 --quiet --output "$OUT/labels/train"
step "$OUT/students/pruned" "prune t1 to 3L/256/8h/1024" bertdistill prune --model "$OUT/teachers/t1" \
  "${TRAIN[@]}" --limit 2000 --layers 3 --layer-map skip --hidden 256 --heads 8 --ffn 1024 \
  --max-length "$MAXLEN" --quiet --output "$OUT/students/pruned"

train() {  # train NAME SEED OPTIONS...
  local name=$1 seed=$2; shift 2
  step "$OUT/students/$name-s$seed" "$name, seed $seed" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
    "${FAST[@]}" --epochs "$STUDENT_EPOCHS" --batch-size 32 --lr 1e-4 --seed "$seed" --resume \
    --labels "$OUT/labels/train" --alpha 0.7 "$@" --output "$OUT/students/$name-s$seed"
}
PKD=(--pkd skip)
PART=${PART:-all}
[ "$PART" = paper ] || for s in $SEEDS; do
  for pkd in "" -kd; do  # "": KD + PKD-skip; -kd: KD alone
    opts=(); [ -z "$pkd" ] && opts=("${PKD[@]}")
    train a-pruned$pkd "$s" --student-from "$OUT/students/pruned" "${opts[@]}"
    train b-random$pkd "$s" --student-config '{"layers": 3, "width": 256, "heads": 8, "intermediate": 1024, "random_init": true}' "${opts[@]}"
    train c-first3$pkd "$s" --student-from "$OUT/teachers/t1" --student-layers 3 "${opts[@]}"
  done
done

# Issue 21: the paper's comparison on the pruned student (a), and the best pipeline. Fine-tuned only, KD
# from t1, PKD from t1, MKDM = a-pruned-kd (2 teachers, one head each, stage 2 only), TMKD = 3 stage-1
# passes over a BM25-mined corpus, then a-pruned-kd's stage 2. Stage-1 corpus: every MRPC training sentence
# with its 4 best BM25 sentences from MRPC, QNLI, SST-2 and SNLI (its own pair's sentence skipped; MRPC
# dev and test sentences excluded). PART=study runs the study above only, PART=paper this part only.
if [ "$PART" != study ]; then
  c=$OUT/corpora/mined.jsonl
  mkdir -p "$OUT/corpora"
  step "$c" "corpus mined" bertdistill corpus "${TRAIN[@]}" --queries "$GLUE/MRPC/train.tsv:#2 String" \
    --passages "$GLUE/QNLI/dev.tsv:sentence" --passages "$GLUE/QNLI/test.tsv:sentence" --passages "$GLUE/SST-2/train.tsv" \
    --passages ../shared/datasets/snli_sample/snli_1.0_dev.head.jsonl:sentence1,sentence2 \
    --exclude "$GLUE/MRPC/dev.tsv:#1 String,#2 String" --exclude "$GLUE/MRPC/msr_paraphrase_test.txt:#1 String,#2 String" \
    --mine bm25 --top-k 4 --no-include-originals --seed 0 --quiet --output "$c"
  step "$OUT/labels/mined" "label corpus mined" bertdistill label --teacher "t1=$OUT/teachers/t1" \
    --teacher "t2=$OUT/teachers/t2" --data "$c" --unlabeled --max-length "$MAXLEN" --backend "$INFER_BACKEND" --quiet \
    --output "$OUT/labels/mined"
  [ -f "$OUT/corpora/mined.stats.json" ] || bertdistill corpus --stats "$c" --labels "$OUT/labels/mined" \
    --json "$OUT/corpora/mined.stats.json" > "$OUT/corpora/mined.stats.txt"
  PRUNED=(--student-from "$OUT/students/pruned")
  for s in $SEEDS; do
    train a-pruned-kd "$s" "${PRUNED[@]}"
    step "$OUT/students/f-finetune-s$s" "fine-tuned only, seed $s" bertdistill finetune "${TRAIN[@]}" "${DEV[@]}" \
      "${FAST[@]}" --epochs "$STUDENT_EPOCHS" --batch-size 32 --lr 1e-4 --seed "$s" --resume "${PRUNED[@]}" \
      --output "$OUT/students/f-finetune-s$s"
    train f-kd1 "$s" "${PRUNED[@]}" --teachers t1
    train f-pkd1 "$s" "${PRUNED[@]}" --teachers t1 "${PKD[@]}"
    step "$OUT/students/tmkd-stage1-s$s" "TMKD stage 1, seed $s" bertdistill pretrain-student --data "$c" \
      --labels "$OUT/labels/mined" "${PRUNED[@]}" --epochs 3 --batch-size 32 --lr 1e-4 --seed "$s" "${FAST[@]}" \
      --resume --output "$OUT/students/tmkd-stage1-s$s"
    train tmkd "$s" --student-from "$OUT/students/tmkd-stage1-s$s"
  done
  MODELS=()
  for s in $SEEDS; do for v in f-finetune f-kd1 f-pkd1 tmkd; do MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
  [ -f "$OUT/bench-quality-paper.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality-paper.json"
  # The deployed student (TMKD, seed 1) against teacher t1, every backend, one run: speed at batch 1 and 32,
  # and the test accuracy each backend gives.
  deployed_bench students/tmkd-s1 --data "$GLUE/MRPC/dev.tsv"
  [ "$PART" = paper ] && exit 0
fi

MODELS=(--model "teacher-t1=$OUT/teachers/t1:$INFER_BACKEND" --model "teacher-t2=$OUT/teachers/t2:$INFER_BACKEND")
for s in $SEEDS; do for v in a-pruned b-random c-first3 a-pruned-kd b-random-kd c-first3-kd; do
  MODELS+=(--model "$v-s$s=$OUT/students/$v-s$s:$INFER_BACKEND"); done; done
[ -f "$OUT/bench-quality.json" ] || bertdistill bench "${MODELS[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 32 --repeats 1 --warmup 1 --threads 2 --json "$OUT/bench-quality.json" --markdown "$OUT/bench-quality.md"
# Speed, one run: teacher t1 and each shape (seed 1, KD alone) in fp32, bf16 and ONNX int8.
for m in teachers/t1 students/a-pruned-kd-s1 students/c-first3-kd-s1; do
  step "$OUT/onnx/$(basename "$m")" "export $m" bertdistill export --model "$OUT/$m" --int8 \
    --data "$GLUE/MRPC/dev.tsv" --int8-min-agreement 0 --max-length "$MAXLEN" --output "$OUT/onnx/$(basename "$m")"
done
SPEED=()
for m in teacher=teachers/t1 pruned=students/a-pruned-kd-s1 first3=students/c-first3-kd-s1; do
  dir=$OUT/${m#*=}
  speed_rows SPEED "${m%%=*}" "$dir" "$OUT/onnx/$(basename "$dir")"
done
[ -f "$OUT/bench-speed.json" ] || bertdistill bench "${SPEED[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
  --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-speed.json" --markdown "$OUT/bench-speed.md"
python examples/mrpc/collect_study.py --out "$OUT" > "$OUT/STUDY.generated.md"
echo "results: $OUT/STUDY.generated.md"
