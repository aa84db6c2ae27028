"""bertdistill: make BERT-family QA and sentence-pair models small and fast.

TMKD (two-stage multi-teacher distillation) and PKD (patient distillation), with labeling,
benchmarking and ONNX export. Every CLI subcommand is a library function too.
"""

__version__ = "0.1.0"
