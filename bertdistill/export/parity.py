"""Parity inputs (real rows or generated tokens) and the comparison of two backends' logits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bertdistill.data.sources import DataSpec, load_task_data
from bertdistill.errors import UserError
from bertdistill.inference.batches import Batch, EncodedRows, encode_rows


@dataclass
class ParityResult:
    """How far one backend's logits are from the reference's."""

    n: int
    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float
    finite: bool
    order_agreement: float | None = None
    """1-logit (score) models: share of row pairs the two rank in the same order; int8 is judged on it."""

    def as_dict(self) -> dict[str, Any]:
        out = {"n": self.n, "max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
               "argmax_agreement": self.argmax_agreement}
        if self.order_agreement is not None:
            out["order_agreement"] = self.order_agreement
        return out

    def check_fp32(self, max_abs_diff: float) -> dict[str, Any]:
        out = self.as_dict() | {"checked": True, "passed": True}
        if not self.finite:
            out.update(passed=False, failure="non-finite logits")
        elif self.max_abs_diff > max_abs_diff:
            out.update(passed=False, failure=f"max_abs_diff above {max_abs_diff:g}")
        return out

    def check_int8(self, min_agreement: float, real_data: bool) -> dict[str, Any]:
        """On generated inputs (random tokens, near-tied logits) agreement says little: report, do not fail."""
        out = self.as_dict() | {"checked": real_data, "passed": True}
        if not self.finite:
            out.update(checked=True, passed=False, failure="non-finite logits")
        elif real_data and self.order_agreement is not None:
            if self.order_agreement < min_agreement:
                out.update(passed=False, failure=f"order_agreement below {min_agreement:g}")
        elif real_data and self.argmax_agreement < min_agreement:
            out.update(passed=False, failure=f"argmax_agreement below {min_agreement:g}")
        return out


def compare_logits(reference: np.ndarray, other: np.ndarray) -> ParityResult:
    """Max/mean absolute difference and argmax agreement of ``other`` against ``reference``.

    For a 1-logit (score) model argmax means nothing: ``argmax_agreement`` is then the agreement of the
    decision score > 0, and ``order_agreement`` the share of row pairs ranked in the same order.
    """
    if reference.shape != other.shape:
        raise UserError(f"logits shapes differ: {reference.shape} vs {other.shape}", None,
                        "the exported graph does not match the model; re-export it")
    finite = bool(np.isfinite(other).all())
    diff = np.abs(reference.astype(np.float64) - other.astype(np.float64))
    order = None
    if reference.ndim == 2 and reference.shape[-1] == 1:
        agree = float(((reference[:, 0] > 0) == (other[:, 0] > 0)).mean()) if len(reference) else 1.0
        order = pair_order_agreement(reference[:, 0], other[:, 0])
    else:
        agree = float((reference.argmax(-1) == other.argmax(-1)).mean()) if len(reference) else 1.0
    return ParityResult(n=int(len(reference)), max_abs_diff=float(diff.max()) if diff.size else 0.0,
                        mean_abs_diff=float(diff.mean()) if diff.size else 0.0, argmax_agreement=agree,
                        finite=finite, order_agreement=order)


def pair_order_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """Share of pairs (i, j) with reference_i > reference_j that ``other`` orders the same way (ties in ``other`` count half)."""
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    pairs = ref[:, None] > ref[None, :]
    if not pairs.any():
        return 1.0
    d = np.sign(oth[:, None] - oth[None, :])[pairs]
    return float(((d > 0) + 0.5 * (d == 0)).mean())


def run_batches(scorer, batches: list[Batch]) -> np.ndarray:
    return np.concatenate([scorer.logits(b) for b in batches], axis=0)


def real_batches(tokenizer, spec: DataSpec, n: int, max_length: int, batch_size: int,
                 seed: int, input_names=("input_ids", "attention_mask", "token_type_ids")
                 ) -> tuple[list[Batch], dict[str, Any]]:
    """Batches of ``n`` rows sampled evenly at random from the data (labels ignored), padded per batch."""
    data = load_task_data(replace(spec, unlabeled=True))
    rng = np.random.default_rng(seed)
    take = min(n, data.num_rows)
    picked = np.sort(rng.choice(data.num_rows, size=take, replace=False)).tolist()
    sample = data.subset(picked)
    text_b = sample.column("text_b") if sample.has_text_b else None
    rows = encode_rows(tokenizer, sample.column("text_a"), text_b, max_length, input_names)
    batches = [batch for _, batch in rows.sorted_batches(batch_size, tokenizer.pad_token_id or 0)]
    info = {"source": data.spec.describe(), "rows_in_data": data.num_rows, "rows_used": take, "seed": seed,
            "content_sha256": sample.fingerprint()["content_sha256"],
            "max_tokens": int(rows.lengths.max()), "mean_tokens": float(np.mean(rows.lengths))}
    return batches, info


def generated_batches(tokenizer, vocab_size: int, n: int, max_length: int, batch_size: int,
                      seed: int, input_names=("input_ids", "attention_mask", "token_type_ids")) -> list[Batch]:
    """Random-token pairs ``[CLS] a [SEP] b [SEP]`` of varied lengths, unsorted so batches carry padding;
    token types (0 for the first text, 1 for the second) only when ``input_names`` has them."""
    rng = np.random.default_rng(seed)
    special = set(tokenizer.all_special_ids)
    ordinary = np.array([i for i in range(vocab_size) if i not in special])
    if len(ordinary) == 0:
        raise UserError("the tokenizer has no ordinary tokens", None, "check the model's vocabulary")
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id or 0
    lengths = rng.integers(4, max_length + 1, size=n)
    lengths[0] = max_length  # the longest case is always exercised
    tokens: dict[str, list[np.ndarray]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    for length in lengths:
        body = length - 3
        a = int(rng.integers(1, body)) if body > 1 else 1
        body_tokens = rng.choice(ordinary, size=body)
        ids = [t for t in (cls, *body_tokens[:a], sep, *body_tokens[a:], sep) if t is not None]
        tokens["input_ids"].append(np.asarray(ids))
        tokens["attention_mask"].append(np.ones(len(ids), dtype=np.int64))
        tokens["token_type_ids"].append(np.asarray([0] * (a + 2) + [1] * (len(ids) - a - 2)))
    tokens = {k: v for k, v in tokens.items() if k in input_names}
    rows = EncodedRows(tokens, np.asarray([len(ids) for ids in tokens["input_ids"]]))
    return [rows.padded(range(start, min(start + batch_size, n)), pad) for start in range(0, n, batch_size)]
