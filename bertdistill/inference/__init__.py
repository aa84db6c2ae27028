"""Inference shared by label, predict, bench and export: encoded batches, scorers, backends by name.

* ``batches``: rows tokenized once into compact arrays, padded into (length-sorted) int64 batches;
* ``scorer``: ``Scorer`` (a loaded model on one backend) and ``score_rows`` / ``predict_logits``;
* ``registry``: backends by name and the ``auto`` rule (``load_scorer``);
* ``torch_backend`` (torch, bf16) and ``onnx_backend`` (onnx, onnx-int8): the built-in backends;
* ``onnx_dir``: the exported ONNX directory's file names.
"""

# Importing the backend modules registers them, in the order commands list them.
from bertdistill.inference import torch_backend  # noqa: F401  (torch, bf16)
from bertdistill.inference import onnx_backend  # noqa: F401  (onnx, onnx-int8)
from bertdistill.inference.batches import Batch, EncodedRows, encode_rows, tokenize_batch
from bertdistill.inference.onnx_dir import ONNX_FP32, ONNX_INT8, is_onnx_dir
from bertdistill.inference.registry import (AUTO, Backend, backend_names, get_backend, load_scorer, register_backend,
                                           registered_backends)
from bertdistill.inference.scorer import Scorer, predict_logits, score_rows

__all__ = ["AUTO", "Backend", "Batch", "EncodedRows", "ONNX_FP32", "ONNX_INT8", "Scorer", "backend_names",
           "encode_rows", "get_backend", "is_onnx_dir", "load_scorer", "predict_logits", "register_backend",
           "registered_backends", "score_rows", "tokenize_batch"]
