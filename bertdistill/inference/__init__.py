"""Inference shared by label, predict, bench and export: encoded batches, scorers, backends by name.

* ``batches``: rows tokenized once into compact arrays, padded into (length-sorted) int64 batches;
* ``scorer``: ``Scorer`` (a loaded model on one backend) and ``score_rows`` / ``predict_logits``;
* ``registry``: backends by name and the ``auto`` rule (``load_scorer``);
* ``*_backend`` modules (``torch_backend``: torch, bf16; ``onnx_backend``: onnx, onnx-int8): the backends,
  each registering itself; every such module here is imported, so a new backend is one module;
* ``onnx_dir``: the exported ONNX directory's file names.
"""

import importlib
import pkgutil

# Importing the backend modules registers them: torch first (``auto`` falls back to it), then by name.
for _name in sorted((m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_backend")),
                    key=lambda n: (n != "torch_backend", n)):
    importlib.import_module(f"{__name__}.{_name}")
from bertdistill.inference.batches import Batch, EncodedRows, encode_rows, tokenize_batch
from bertdistill.inference.onnx_dir import ONNX_FP32, ONNX_INT8, is_onnx_dir
from bertdistill.inference.registry import (AUTO, Backend, backend_names, get_backend, load_scorer, register_backend,
                                           registered_backends)
from bertdistill.inference.scorer import Scorer, predict_logits, score_rows

__all__ = ["AUTO", "Backend", "Batch", "EncodedRows", "ONNX_FP32", "ONNX_INT8", "Scorer", "backend_names",
           "encode_rows", "get_backend", "is_onnx_dir", "load_scorer", "predict_logits", "register_backend",
           "registered_backends", "score_rows", "tokenize_batch"]
