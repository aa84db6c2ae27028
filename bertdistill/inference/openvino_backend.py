"""OpenVINO backend: ``openvino`` runs the OpenVINO IR (``openvino/model.xml`` + ``model.bin``) that
``bertdistill export --openvino`` writes beside ``model.onnx``, on the CPU plugin. (In a folder of its own: a
``.bin`` beside ``config.json`` would make the export look like a PyTorch model directory.)

Precision: bf16 on CPUs whose OpenVINO plugin reports BF16 (AVX512-BF16 or AMX), fp32 elsewhere; the export
records the precision it checked (``openvino_precision`` in ``export_report.json``) and the backend uses it when
the CPU can (``BERTDISTILL_OPENVINO_PRECISION=f32|bf16`` overrides). OpenVINO is an optional extra:
``pip install 'bertdistill[openvino]'``; without it the backend is still listed and says how to install it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from bertdistill.data.tokenize import MODEL_INPUTS
from bertdistill.errors import UserError
from bertdistill.inference.batches import Batch
from bertdistill.inference.onnx_dir import EXPORT_REPORT
from bertdistill.inference.registry import Backend, register_backend
from bertdistill.inference.scorer import Scorer

OPENVINO_DIR = "openvino"
OPENVINO_XML = f"{OPENVINO_DIR}/model.xml"
"""The IR's graph, relative to the export directory; its weights are ``model.bin`` beside it."""
OPENVINO_BIN = f"{OPENVINO_DIR}/model.bin"
PRECISIONS = ("auto", "bf16", "f32")
INSTALL = "pip install 'bertdistill[openvino]'"
_ENV = "BERTDISTILL_OPENVINO_PRECISION"


def is_openvino_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / OPENVINO_XML).is_file()


def require_openvino():
    try:
        import openvino
    except ImportError:
        raise UserError("the openvino backend needs the openvino package, which is not installed", None,
                        f"{INSTALL}, or use another backend") from None
    return openvino


def cpu_has_bf16() -> bool:
    ov = require_openvino()
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # an old plugin without the property: fp32 is always right
        return False


def resolve_precision(asked: str | None) -> str:
    """``auto``/None → bf16 where the CPU has it, else f32; bf16 asked for on a CPU without it → f32."""
    asked = os.environ.get(_ENV) or asked or "auto"
    if asked not in PRECISIONS:
        raise UserError(f"unknown OpenVINO precision {asked!r}", None, f"use one of: {', '.join(PRECISIONS)}")
    if asked == "f32":
        return "f32"
    return "bf16" if cpu_has_bf16() else "f32"


def convert_onnx(onnx_file: Path, xml: Path) -> None:
    """Write the OpenVINO IR of an ONNX graph (weights kept in fp32; the precision is chosen when compiled)."""
    ov = require_openvino()
    try:
        model = ov.convert_model(str(onnx_file))
        ov.save_model(model, str(xml), compress_to_fp16=False)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"OpenVINO cannot convert the ONNX model ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''})", str(onnx_file),
                        "export without --openvino") from None


def load_openvino(path: str, threads: int | None = None, trust_remote_code: bool = False, device: str = "cpu",
                  precision: str | None = None) -> Scorer:
    """A compiled OpenVINO model on the CPU (one stream, latency hint); the graph returns logits only."""
    from bertdistill.io import is_complete, read_json
    from bertdistill.models import config_label_names, load_config, load_tokenizer

    p = Path(path)
    if device not in ("cpu", "auto", None):
        raise UserError(f"the openvino backend runs on the CPU, not {device}", "--device",
                        "use --device cpu, or the onnx backend on a GPU")
    ov = require_openvino()
    if (p / EXPORT_REPORT).is_file() and not is_complete(p):
        raise UserError("export is unfinished (no completion marker)", path, "run bertdistill export again")
    xml = p / OPENVINO_XML
    if not xml.is_file():
        raise UserError(f"no {OPENVINO_XML} in the directory", path, "export with bertdistill export --openvino")
    report = read_json(p / EXPORT_REPORT) if (p / EXPORT_REPORT).is_file() else {}
    chosen = resolve_precision(precision or report.get("openvino_precision"))
    settings = {"INFERENCE_PRECISION_HINT": chosen, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
    if threads:
        settings["INFERENCE_NUM_THREADS"] = str(threads)
    try:
        compiled = ov.Core().compile_model(str(xml), "CPU", settings)
    except Exception as exc:
        raise UserError(f"OpenVINO cannot load the model ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})",
                        str(xml), "re-export it with bertdistill export --openvino") from None
    graph_inputs = {name for port in compiled.inputs for name in port.get_names()}
    input_names = tuple(k for k in MODEL_INPUTS if k in graph_inputs)
    request = compiled.create_infer_request()
    output = compiled.output("logits") if "logits" in {n for o in compiled.outputs for n in o.get_names()} \
        else compiled.output(0)
    config = load_config(str(p), option="the exported directory")
    tokenizer = load_tokenizer(str(p), option="the exported directory")

    def forward(batch: Batch, layers: Sequence[int]) -> tuple[np.ndarray, None]:
        if layers:
            raise UserError("[CLS] hidden states cannot be read from an OpenVINO model", path,
                            "use --backend torch or bf16 with the Hugging Face model directory")
        feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in input_names if k in batch}
        result = request.infer(feeds)
        return np.asarray(result[output], dtype=np.float32).copy(), None

    return Scorer(str(p), "openvino", tokenizer, config_label_names(config), config, input_names, forward,
                  model_file=str(p / OPENVINO_BIN), num_parameters=report.get("num_parameters"), device="cpu")


register_backend(Backend(
    "openvino", load_openvino, is_openvino_dir, "OpenVINO",
    f"an exported directory with an OpenVINO model ({OPENVINO_XML})", hidden_states=False,
    how_to_make=f"export it with bertdistill export --openvino ({INSTALL})", export=True))
