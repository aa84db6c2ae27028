#!/usr/bin/env bash
# Demo pipeline (filled in by the demo issue); for now: check the shipped demo data.
set -euo pipefail
bertdistill data --data "$(dirname "$0")/../../bertdistill/demo_data/demo_qa.tsv" --group-column qid
