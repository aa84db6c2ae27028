#!/usr/bin/env bash
# Issues 20 and 33: what a new user gets with DEFAULT options on each shared task, on a fixed subsample.
# Per task: a MiniLM-L6 teacher with default options, its label store (every layer's [CLS] state, for PKD), and
# 3-layer students with default options: fine-tuned only, distilled (--labels) and distilled with PKD added
# (--pkd skip, the default β); SEEDS_SMALL for the two smallest tasks (SNLI, RTE), SEEDS for the others. Only the
# data options, --student-layers 3, --pkd and --baseline (the same seed fine-tuned alone, for the distilled runs'
# own table) are given. Accelerate's configuration selects the precision (ACCELERATE_MIXED_PRECISION, as `accelerate
# config` would): auto, bf16 where the CPU computes it in hardware, so that the study fits the CPU budget (an AVX2
# CPU emulates bf16, several times slower than fp32). Then examples/defaults/collect.py scores every model on the
# task's test file.
#   OUT=runs/defaults3 ROWS=2000 bash examples/defaults/run.sh
# Every step is skipped when its output is complete, so the script can be stopped and run again. A student whose
# every evaluation collapsed exits 3 (saved, marked as failed); the study goes on and collect.py reports it.
# TEACHERS_ONLY=1 stops after the teachers and their label stores; SKIP_TEACHERS=1 leaves them out (to train the
# fine-tuned-only students, STUDENTS=finetune, while the teachers train elsewhere). TEACHER_MODEL=mpnet-base
# trains the teachers from another base; the distilled students start from the teacher's first 3 layers and
# the fine-tuned-only ones from the same base's first 3 layers (the packaged MiniLM's without TEACHER_MODEL).
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
source examples/defaults/tasks.sh
OUT=${OUT:-runs/defaults3}
ROWS=${ROWS:-2000}
SEEDS=${SEEDS:-1}
SEEDS_SMALL=${SEEDS_SMALL:-"1 2 3"}
TASKS=${TASKS:-"snli rte mrpc sst2 wikiqa"}
STUDENTS=${STUDENTS:-"finetune kd pkd"}
export ACCELERATE_MIXED_PRECISION=${ACCELERATE_MIXED_PRECISION:-auto} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

teacher_model=(); [ -n "${TEACHER_MODEL:-}" ] && teacher_model=(--model "$TEACHER_MODEL")
for task in $TASKS; do
  T=$OUT/$task
  read -r -a TRAIN <<< "$(train_args "$task")"
  if [ -z "${SKIP_TEACHERS:-}" ]; then
    step "$T/teacher" "$task: teacher (defaults)" bertdistill finetune "${TRAIN[@]}" "${teacher_model[@]}" \
      --output "$T/teacher"
    step "$T/labels" "$task: teacher labels" \
      bertdistill label --teacher "t1=$T/teacher" "${TRAIN[@]}" --hidden-layers all --backend "$INFER_BACKEND" --quiet \
        --output "$T/labels"
  fi
  [ -n "${TEACHERS_ONLY:-}" ] && continue
  seeds=$SEEDS; case $task in snli|rte) seeds=$SEEDS_SMALL;; esac
  for s in $seeds; do
    for student in $STUDENTS; do
      case $student in
        finetune) opts=("${teacher_model[@]}") ;;  # the same pretrained base as the teacher
        kd) opts=(--labels "$T/labels") ;;
        pkd) opts=(--labels "$T/labels" --pkd skip) ;;
      esac
      # the same seed fine-tuned alone, when it is there, goes into the distilled run's own table (--baseline)
      [ "$student" != finetune ] && [ -f "$T/finetune-s$s/.complete" ] && opts+=(--baseline "$T/finetune-s$s")
      step "$T/$student-s$s" "$task: student $student (defaults), seed $s" \
        failed_ok bertdistill finetune "${TRAIN[@]}" "${opts[@]}" --student-layers 3 --seed "$s" --output "$T/$student-s$s"
    done
  done
done
[ -n "${TEACHERS_ONLY:-}" ] || python examples/defaults/collect.py --out "$OUT" --glue "$GLUE" --wikiqa "$WIKIQA" \
  --snli "$SNLI" --tasks $TASKS
