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

# The teachers label in bf16 where the CPU computes it in hardware (AVX512-BF16, AMX) or on a GPU, in fp32 where the
# CPU would emulate it, several times slower: the rule of `mixed_precision: auto` (bertdistill.devices.native_bf16).
LABEL_BACKEND=${LABEL_BACKEND:-$(python -c "from bertdistill.devices import native_bf16, training_device as d
print('bf16' if d().type != 'cpu' or native_bf16(d()) else 'torch')")}

# deployed_bench STUDENT EXPORT_DATA_OPTIONS...: export teacher t1 and STUDENT (paths under $OUT) to ONNX
# fp32 + int8 (parity rows from the options given), then time both on every backend (PyTorch fp32, bf16,
# ONNX int8) in one bench run over the test set, with the metric each backend gives: $OUT/bench-deployed.*.
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
    deploy+=(--model "$name=$dir" --model "$name-bf16=$dir:bf16" --model "$name-int8=$OUT/onnx/$(basename "$dir"):onnx-int8")
  done
  [ -f "$OUT/bench-deployed.json" ] || bertdistill bench "${deploy[@]}" "${TEST[@]}" --max-length "$MAXLEN" \
    --batch-sizes 1,32 --repeats 10 --threads 2 --json "$OUT/bench-deployed.json" --markdown "$OUT/bench-deployed.md" \
    --plot "$OUT/bench-deployed.png"
}
