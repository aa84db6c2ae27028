"""A sequence classifier with one output head per teacher (TMKD), sharing everything below the head.

Any Hugging Face sequence classifier whose last layer is a ``nn.Linear`` works (where it is comes from
the model's family adapter: BERT ``classifier``, RoBERTa ``classifier.out_proj``). The model's own linear is head 0; the other heads are extra
linears fed the same features (captured by a forward hook). Because the heads are linear, the mean
of their logits equals one linear with the mean weights and bias: ``fold_heads`` writes that into the
model's own classifier, so the saved model is a plain classifier that gives the averaged prediction.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from bertdistill.families import output_linear
from bertdistill.student.features import NOTHING, FeatureRequest, Features, forward_features

HEADS_FILE = "teacher_heads.safetensors"
HEADS_META = "teacher_heads.json"


class StudentModel(nn.Module):
    """``classifier`` (a HF sequence classifier) plus one extra head per further teacher."""

    def __init__(self, classifier: nn.Module, head_names: Sequence[str] = ("classifier",)):
        super().__init__()
        self.classifier = classifier
        self.head_names = list(head_names)
        linear = output_linear(classifier)
        self.extra_heads = nn.ModuleList()
        for _ in self.head_names[1:]:
            head = copy.deepcopy(linear)
            self.extra_heads.append(head)
        self._features: torch.Tensor | None = None
        linear.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        self._features = inputs[0]

    @property
    def config(self):
        return self.classifier.config

    @property
    def num_heads(self) -> int:
        return len(self.head_names)

    def heads(self) -> list[nn.Linear]:
        return [output_linear(self.classifier), *self.extra_heads]

    def reinit_heads(self, seed: int) -> None:
        """Fresh, distinct head weights (each head starts differently, like separately trained heads)."""
        std = getattr(self.config, "initializer_range", 0.02)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for head in self.heads():
                head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * std)
                head.bias.zero_()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                request: FeatureRequest = NOTHING) -> Features:
        """Features with the logits of every head, shaped (heads, B, C), and the states ``request`` names.
        Token types are passed only when given (the batch holds them only for models that read them)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        out, features = forward_features(self.classifier, inputs, request)
        logits = [out.logits]
        if self.extra_heads:
            logits += [head(self._features).to(out.logits.dtype) for head in self.extra_heads]
        self._features = None
        features.logits = torch.stack(logits)
        return features

    # -- saving ------------------------------------------------------------------------------
    def folded_classifier(self) -> nn.Module:
        """A copy of the classifier whose output linear is the exact mean of all heads."""
        model = copy.deepcopy(self.classifier)
        fold_heads_into(output_linear(model), self.heads())
        return model

    def head_state(self) -> dict[str, torch.Tensor]:
        state = {}
        for i, head in enumerate(self.heads()):
            state[f"head_{i}.weight"] = head.weight.detach().float().contiguous().clone()
            state[f"head_{i}.bias"] = head.bias.detach().float().contiguous().clone()
        return state

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for i, head in enumerate(self.heads()):
                head.weight.copy_(state[f"head_{i}.weight"])
                head.bias.copy_(state[f"head_{i}.bias"])


def fold_heads_into(target: nn.Linear, heads: Sequence[nn.Linear]) -> None:
    """target ← mean of the heads' weights and biases (exactly the mean of their logits)."""
    with torch.no_grad():
        target.weight.copy_(torch.stack([h.weight.float() for h in heads]).mean(0).to(target.weight.dtype))
        target.bias.copy_(torch.stack([h.bias.float() for h in heads]).mean(0).to(target.bias.dtype))


def save_student(model: StudentModel, tokenizer, out_dir: Path, label_names: Sequence[str]) -> None:
    """Plain HF directory (folded classifier, id2label, tokenizer) plus the per-teacher heads if several."""
    import json

    from safetensors.torch import save_file

    classifier = model.folded_classifier().float()
    if output_linear(classifier).out_features == 1:
        from bertdistill.student.build import mark_score_config

        mark_score_config(classifier.config, label_names)
    else:
        classifier.config.id2label = dict(enumerate(label_names))
        classifier.config.label2id = {n: i for i, n in enumerate(label_names)}
        classifier.config.num_labels = len(label_names)
    classifier.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    if model.num_heads > 1:
        save_file(model.head_state(), str(Path(out_dir) / HEADS_FILE))
        (Path(out_dir) / HEADS_META).write_text(json.dumps(
            {"teachers": model.head_names, "label_names": list(label_names),
             "note": "per-teacher output heads; the model's classifier is their mean"}, indent=2) + "\n")


def load_saved_heads(model_dir: str | Path) -> tuple[list[str], dict[str, torch.Tensor]] | None:
    """Per-teacher heads saved by pretrain-student/finetune, or None."""
    import json

    from safetensors.torch import load_file

    path = Path(model_dir)
    if not (path / HEADS_FILE).is_file() or not (path / HEADS_META).is_file():
        return None
    names = json.loads((path / HEADS_META).read_text())["teachers"]
    return names, load_file(str(path / HEADS_FILE))
