"""The exported ONNX directory that ``bertdistill export`` writes and the ONNX backends load.

It holds ``model.onnx`` (and optionally ``model_quantized.onnx``, the name optimum and
sentence-transformers look for; directories exported before use ``model.int8.onnx``, still read) with inputs ``input_ids``,
``attention_mask`` and, for models that read them, ``token_type_ids`` (int64, dynamic batch and sequence
axes) and output ``logits``,
plus tokenizer files, ``config.json`` (id2label) and ``export_report.json``.
"""

from __future__ import annotations

from pathlib import Path

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model_quantized.onnx"
ONNX_INT8_OLD = "model.int8.onnx"
EXPORT_REPORT = "export_report.json"


def is_onnx_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / f).is_file() for f in (ONNX_FP32, ONNX_INT8, ONNX_INT8_OLD))


def int8_file(path: str | Path) -> Path:
    """The int8 model of an exported directory: ``model_quantized.onnx``, or the older ``model.int8.onnx``."""
    p = Path(path)
    return p / ONNX_INT8_OLD if not (p / ONNX_INT8).is_file() and (p / ONNX_INT8_OLD).is_file() else p / ONNX_INT8
