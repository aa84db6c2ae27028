"""int8 ONNX: dynamic quantization of an exported fp32 graph (int8 weights, activations quantized at run time)."""

from __future__ import annotations

import logging
from pathlib import Path

from bertdistill.errors import UserError


def quantize_int8(fp32: Path, int8: Path, exporter: str, work: Path, per_channel: bool) -> None:
    """Write ``int8`` from ``fp32``; ``per_channel`` gives each weight's output channels their own scale."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = fp32
    if exporter == "dynamo":
        # quantize_dynamic fails on the dynamo exporter's shape annotations until they are cleared.
        proto = onnx.load(str(fp32))
        del proto.graph.value_info[:]
        source = work / "model.novalueinfo.onnx"
        onnx.save(proto, str(source))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice is noise for transformer encoders
    try:
        quantize_dynamic(str(source), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel)
    except Exception as exc:
        raise UserError(f"int8 quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                        str(fp32), "export without --int8, or try --exporter legacy") from None
    finally:
        root.setLevel(level)
        if source != fp32:
            source.unlink(missing_ok=True)
