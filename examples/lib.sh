# Shared by the example pipelines: run a step unless its output is already complete.
# step OUTPUT TITLE COMMAND...: OUTPUT is a directory with a .complete marker, or a file with a
# <file>.meta.json sidecar (bertdistill corpus).
step() {
  local out=$1 title=$2; shift 2
  if [ -f "$out/.complete" ] || { [ -f "$out" ] && [ -f "$out.meta.json" ]; }; then
    echo "== $title: done already ($out)"
  else
    echo "== $title  [$(date +%H:%M:%S)]"
    "$@"
  fi
}

# The backend the scripts label and score test sets with: bf16 where the CPU computes it in hardware (AVX512-BF16,
# AMX) or on a GPU, fp32 (torch) where the CPU would emulate it, several times slower: the rule of
# `mixed_precision: auto` (bertdistill.devices.native_bf16).
INFER_BACKEND=${INFER_BACKEND:-$(python -c "from bertdistill.devices import native_bf16, training_device as d
print('bf16' if d().type != 'cpu' or native_bf16(d()) else 'torch')")}

# speed_rows ARRAY NAME MODEL_DIR ONNX_DIR: append to ARRAY the bench's --model options for one model on each backend
# it could be deployed with: PyTorch fp32, bf16 (only where INFER_BACKEND is bf16: emulated, it is never the
# fastest and takes minutes) and ONNX int8.
speed_rows() {
  local -n rows=$1
  rows+=(--model "$2=$3")
  [ "$INFER_BACKEND" = bf16 ] && rows+=(--model "$2-bf16=$3:bf16")
  rows+=(--model "$2-int8=$4:onnx-int8")
}

# deployed_bench STUDENT EXPORT_DATA_OPTIONS...: export teacher t1 and STUDENT (paths under $OUT) to ONNX
# fp32 + int8 (parity rows from the options given), then time both on every backend (speed_rows: PyTorch fp32,
# bf16, ONNX int8) in one bench run over the test set, with the metric each backend gives: $OUT/bench-deployed.*.
# Uses the caller's OUT, TEST (array) and MAXLEN.
deployed_bench() {
  local student=$1 m name dir deploy=()
  shift
  for m in teachers/t1 "$student"; do
    step "$OUT/onnx/$(basename "$m")" "export $m" bertdistill export --model "$OUT/$m" --int8 "$@" \
      --int8-min-agreement 0 --max-length "$MAXLEN" --output "$OUT/onnx/$(basename "$m")"
  done
  for m in teacher=teachers/t1 "student=$student"; do
    name=${m%%=*}; dir=$OUT/${m#*=}
    speed_rows deploy "$name" "$dir" "$OUT/onnx/$(basename "$dir")"
  done
  [ -f "$OUT/bench-deployed.json" ] || bertdistill bench "${deploy[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-deployed.json" --markdown "$OUT/bench-deployed.md" \
    --plot "$OUT/bench-deployed.png"
}
