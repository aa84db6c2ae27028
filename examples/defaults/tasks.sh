# The shared tasks of examples/defaults (sourced by run.sh and the sweeps): the data folders (GLUE, WIKIQA, SNLI;
# override from the environment), train_args and failed_ok; ROWS is set by the caller.
GLUE=${GLUE:-../shared/datasets/glue}
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
SNLI=${SNLI:-../shared/datasets/snli_sample}
train_args() {  # the training data of a task, first $ROWS rows
  case $1 in
    rte) echo "--data $GLUE/RTE/train.tsv --limit $ROWS" ;;
    mrpc) echo "--data $GLUE/MRPC/train.tsv --limit $ROWS" ;;
    sst2) echo "--data $GLUE/SST-2/train.tsv --limit $ROWS" ;;
    wikiqa) echo "--data $WIKIQA/WikiQA-train.txt --columns query,passage,label --task ranking --limit $ROWS" ;;
    # 3 classes (entailment, neutral, contradiction): the shared sample's dev part (1,273 rows once the
    # 16 without a gold label are dropped) trains; its test part (1,254) tests.
    snli) echo "--data $SNLI/snli_1.0_dev.head.jsonl --limit $ROWS" ;;
    *) echo "unknown task $1 (snli, rte, mrpc, sst2 or wikiqa)" >&2; return 2 ;;
  esac
}

failed_ok() {  # run a training command; exit 3 (saved, marked FAILED: every evaluation collapsed) does not stop a study
  "$@" || { local rc=$?; [ "$rc" -eq 3 ] || return "$rc"; echo "   (exit 3: collapsed; kept, marked as failed)"; }
}
