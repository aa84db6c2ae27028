"""fp32 ONNX export of a sequence classifier: the inputs the model reads (``input_ids``, ``attention_mask`` and,
for models with several token types, ``token_type_ids``), dynamic batch and sequence axes, ``logits`` out."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

from bertdistill.errors import UserError

EXPORTERS = ("legacy", "dynamo")
MIN_OPSET = 17


def logits_only(model, input_names):
    """The model behind a module taking ``input_names`` (ids and mask, then token types if the model reads
    them) by name, in that order, with a single ``logits`` output. Explicit parameters, not ``*inputs``:
    both exporters name the graph's inputs after them."""
    import torch

    class IdsMask(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    class IdsMaskTypes(IdsMask):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    wrappers = {("input_ids", "attention_mask"): IdsMask,
                ("input_ids", "attention_mask", "token_type_ids"): IdsMaskTypes}
    # Export can leave the wrapper in training mode (dropout in the graph): eval explicitly.
    return wrappers[tuple(input_names)](model).eval()


def dummy_inputs(vocab_size: int, seed: int, input_names=("input_ids", "attention_mask", "token_type_ids")):
    """Two rows of different real length (padding), two segments, so tracing sees the general case."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(low=min(5, vocab_size - 1), high=vocab_size, size=(2, 16), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    types = torch.zeros_like(ids)
    types[:, 8:] = 1
    made = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return tuple(made[name] for name in input_names)


def export_fp32(model, file: Path, exporter: str, opset: int, seed: int, where: str | None) -> None:
    """Write ``model`` to ``file`` with the ``legacy`` (TorchScript) or ``dynamo`` exporter and check the graph."""
    import onnx
    import torch

    from bertdistill.families import input_names

    names = input_names(model.config, model)
    wrapper = logits_only(model, names)
    args = dummy_inputs(model.config.vocab_size, seed, names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    kwargs: dict[str, Any] = {"input_names": list(names), "output_names": ["logits"],
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
