# The shared tasks of examples/defaults (sourced by run.sh and sweep.sh): the data folders (GLUE, WIKIQA;
# override from the environment) and train_args; ROWS is set by the caller.
GLUE=${GLUE:-../shared/datasets/glue}
WIKIQA=${WIKIQA:-../shared/datasets/wikiqa}
train_args() {  # the training data of a task, first $ROWS rows
  case $1 in
    rte) echo "--data $GLUE/RTE/train.tsv --limit $ROWS" ;;
    mrpc) echo "--data $GLUE/MRPC/train.tsv --limit $ROWS" ;;
    sst2) echo "--data $GLUE/SST-2/train.tsv --limit $ROWS" ;;
    wikiqa) echo "--data $WIKIQA/WikiQA-train.txt --columns query,passage,label --task ranking --limit $ROWS" ;;
    *) echo "unknown task $1 (rte, mrpc, sst2 or wikiqa)" >&2; return 2 ;;
  esac
}
