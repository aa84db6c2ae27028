"""fp32 ONNX export of a sequence classifier: fixed input names, dynamic batch and sequence axes, ``logits`` out."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from pathlib import Path
from typing import Any

from bertdistill.data.tokenize import MODEL_INPUTS
from bertdistill.errors import UserError

EXPORTERS = ("legacy", "dynamo")
MIN_OPSET = 17


def logits_only(model):
    """The model behind a module with fixed input names/order and a single ``logits`` output."""
    import torch

    accepts_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if accepts_token_types:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).logits

    # Export can leave the wrapper in training mode (dropout in the graph): eval explicitly.
    return LogitsOnly(model).eval()


def dummy_inputs(vocab_size: int, seed: int):
    """Two rows of different real length (padding), two segments, so tracing sees the general case."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(low=min(5, vocab_size - 1), high=vocab_size, size=(2, 16), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    types = torch.zeros_like(ids)
    types[:, 8:] = 1
    return ids, mask, types


def export_fp32(model, file: Path, exporter: str, opset: int, seed: int, where: str | None) -> None:
    """Write ``model`` to ``file`` with the ``legacy`` (TorchScript) or ``dynamo`` exporter and check the graph."""
    import onnx
    import torch

    wrapper = logits_only(model)
    args = dummy_inputs(model.config.vocab_size, seed)
    axes = {name: {0: "batch", 1: "sequence"} for name in MODEL_INPUTS}
    axes["logits"] = {0: "batch"}
    kwargs: dict[str, Any] = {"input_names": list(MODEL_INPUTS), "output_names": ["logits"],
                              "dynamic_axes": axes, "opset_version": opset}
    if exporter == "legacy":
        kwargs.update(dynamo=False, do_constant_folding=True)
    else:
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise UserError("the dynamo exporter needs the onnxscript package", None,
                            "pip install onnxscript, or use --exporter legacy") from None
        kwargs.update(dynamo=True, external_data=False, verbose=False)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_stdout(exporter == "dynamo"):
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow are expected
            torch.onnx.export(wrapper, args, str(file), **kwargs)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                        where, "try the other --exporter, or another --opset") from None
    wrapper.eval()
    onnx.checker.check_model(str(file))


@contextlib.contextmanager
def _quiet_stdout(enabled: bool):
    """The dynamo exporter prints progress lines to stdout; keep the command's output readable."""
    if not enabled:
        yield
        return
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        yield
