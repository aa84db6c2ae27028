"""int8 ONNX from an exported fp32 graph, by one of several recipes tried in order until one keeps the model's
decisions (``choose_int8``).

* ``dynamic``: int8 weights, activations quantized at run time (``quantize_dynamic``);
* ``static``: int8 weights and activations with ranges calibrated on real rows of the export's data (QDQ);
* either with the most sensitive operators kept in fp32: the classifier and pooler, then the top encoder
  layers one at a time (``… top k layers fp32``). Where the logits come straight out of a few narrow layers
  (a 2- or 3-layer student), rounding there flips close decisions that rounding lower down does not.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bertdistill.errors import UserError

QUANTIZED_OPS = ("MatMul", "Gemm")
_LAYER = re.compile(r"(?:^|/)(?:layer|layers)\.(\d+)(?:/|$)")
"""Encoder layer index in a node name of the TorchScript exporter (``/inner/bert/encoder/layer.2/...``)."""


@dataclass(frozen=True)
class Int8Recipe:
    static: bool = False
    """Calibrated static quantization (activations too) instead of dynamic."""
    fp32_top: int | None = None
    """Keep the head (classifier, pooler: whatever follows the last layer) and the top ``fp32_top`` encoder
    layers in fp32; None quantizes every MatMul/Gemm."""
    calibration: str = "minmax"
    """Static recipes: how activation ranges are set from the calibration rows (minmax, percentile, entropy)."""

    @property
    def name(self) -> str:
        kind = (f"static ({self.calibration})" if self.calibration != "minmax" else "static") if self.static else "dynamic"
        if self.fp32_top is None:
            return kind
        return f"{kind}, head{f' + top {self.fp32_top} layer' + ('s' if self.fp32_top > 1 else '') if self.fp32_top else ''} in fp32"


def recipes(num_layers: int, calibration: bool) -> list[Int8Recipe]:
    """The recipes in the order they are tried: dynamic (no calibration needed), static, then more and more of
    the top in fp32 (at most half the layers: beyond that int8 saves little)."""
    kinds = [False, True] if calibration else [False]
    out = [Int8Recipe(static=s) for s in kinds]
    for top in range(0, max(1, num_layers // 2) + 1):
        out += [Int8Recipe(static=s, fp32_top=top) for s in kinds]
    return out


def layer_of(node_name: str) -> int | None:
    m = _LAYER.search(node_name)
    return int(m.group(1)) if m else None


def sensitive_nodes(model_file: Path, fp32_top: int) -> list[str]:
    """MatMul/Gemm nodes of the head (after the last encoder layer) and of the top ``fp32_top`` layers."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    nodes = [n for n in graph.node if n.op_type in QUANTIZED_OPS]
    layers = [layer_of(n.name) for n in nodes]
    top = max((x for x in layers if x is not None), default=-1)
    keep, seen_layer = [], False
    for node, layer in zip(nodes, layers):
        seen_layer = seen_layer or layer is not None
        if layer is None and seen_layer:  # after the encoder: pooler, classifier
            keep.append(node.name)
        elif layer is not None and layer > top - fp32_top:
            keep.append(node.name)
    return keep


def _quiet():
    """ONNX Runtime's quantizer logs advice ("consider pre-processing") that is noise for these encoders."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    return root, level


def _without_value_info(fp32: Path, work: Path) -> Path:
    """quantize_* fail on the dynamo exporter's shape annotations until they are cleared."""
    import onnx

    proto = onnx.load(str(fp32))
    del proto.graph.value_info[:]
    source = work / "model.novalueinfo.onnx"
    onnx.save(proto, str(source))
    return source


class _Reader:
    """Calibration batches for ``quantize_static``, fed as the graph's inputs; ``same_length`` pads them all to
    the longest (the histogram calibrations stack every batch's activations)."""

    def __init__(self, batches: Sequence[dict[str, np.ndarray]], input_names: Sequence[str], same_length: bool,
                 pad_token_id: int = 0):
        width = max(b["input_ids"].shape[1] for b in batches)
        feeds = []
        for b in batches:
            feed = {}
            for k in input_names:
                a = np.asarray(b[k], dtype=np.int64)
                if same_length and a.shape[1] < width:
                    fill = pad_token_id if k == "input_ids" else 0
                    a = np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)
                feed[k] = a
            feeds.append(feed)
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def quantize_int8(fp32: Path, int8: Path, exporter: str, work: Path, per_channel: bool,
                  recipe: Int8Recipe = Int8Recipe(), calibration: Sequence[dict] | None = None) -> None:
    """Write ``int8`` from ``fp32`` by ``recipe``; ``per_channel`` gives each weight's output channels their
    own scale; ``calibration``: batches of real rows (static recipes)."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    source = _without_value_info(fp32, work) if exporter == "dynamo" else fp32
    exclude = sensitive_nodes(source, recipe.fp32_top) if recipe.fp32_top is not None else []
    root, level = _quiet()
    try:
        if recipe.static:
            if not calibration:
                raise UserError("static int8 needs calibration rows", None, "pass --data with real rows")
            inputs = [i.name for i in onnx.load(str(source), load_external_data=False).graph.input]
            reader = _Reader(calibration, inputs, same_length=recipe.calibration != "minmax")
            quantize_static(str(source), str(int8), reader, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=exclude,
                            calibrate_method={"minmax": CalibrationMethod.MinMax,
                                              "percentile": CalibrationMethod.Percentile,
                                              "entropy": CalibrationMethod.Entropy}[recipe.calibration],
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        else:
            quantize_dynamic(str(source), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel,
                             op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=exclude)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"int8 quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                        str(fp32), "export without --int8, or try --exporter legacy") from None
    finally:
        root.setLevel(level)
        if source != fp32:
            source.unlink(missing_ok=True)


def choose_int8(fp32: Path, int8: Path, exporter: str, work: Path, per_channel: bool, num_layers: int,
                calibration: Sequence[dict] | None, check: Callable[[], dict]) -> tuple[dict, list[dict]]:
    """Quantize by each recipe in turn (``recipes``) until ``check()`` (the parity of the file just written)
    passes; returns that parity and every recipe tried with its agreement. Without calibration rows only the
    dynamic recipes are tried; when none passes, the last checked one's parity (failed) is returned. A recipe
    that cannot quantize the graph is recorded and skipped; when none can, its error is raised."""
    tried: list[dict] = []
    parity: dict = {}
    error: UserError | None = None
    for recipe in recipes(num_layers, bool(calibration)):
        try:
            quantize_int8(fp32, int8, exporter, work, per_channel, recipe, calibration)
        except UserError as exc:  # e.g. a graph static quantization cannot handle: the next recipe may
            error = exc
            tried.append({"recipe": recipe.name, "passed": False, "error": exc.what})
            continue
        parity = check()
        tried.append({"recipe": recipe.name, "passed": parity["passed"],
                      **{k: parity[k] for k in ("argmax_agreement", "order_agreement", "max_abs_diff") if k in parity}})
        if parity["passed"]:
            break
    if not parity:  # no recipe could even write a file
        assert error is not None
        raise error
    parity = {**parity, "recipe": next(t["recipe"] for t in reversed(tried) if "error" not in t)}
    return parity, tried
