"""The exported ONNX directory that ``bertdistill export`` writes and the ONNX backends load.

It holds ``model.onnx`` (and optionally ``model.int8.onnx``) with inputs ``input_ids``,
``attention_mask``, ``token_type_ids`` (int64, dynamic batch and sequence axes) and output ``logits``,
plus tokenizer files, ``config.json`` (id2label) and ``export_report.json``.
"""

from __future__ import annotations

from pathlib import Path

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
EXPORT_REPORT = "export_report.json"


def is_onnx_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and ((p / ONNX_FP32).is_file() or (p / ONNX_INT8).is_file())
