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
