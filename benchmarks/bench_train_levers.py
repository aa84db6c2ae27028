"""Training-speed levers, each measured against the same step without it, interleaved in one process.

    python benchmarks/bench_train_levers.py                    # MiniLM-L6 and its first 3 layers, bf16
    python benchmarks/bench_train_levers.py --layers 6 --precision fp32 --steps 20

A step is what ``bertdistill finetune`` does per update: a length-grouped batch of real WikiQA pairs (batch 32,
max length 64), forward under autocast, cross-entropy, backward, gradient clipping (max norm 1), AdamW
(weight decay on weights only) and zero_grad. Variants (each a separate copy of the same model and optimizer
state, stepped in rotated order on the same batches, 2 threads):

* ``baseline``: what the loop did before issue 34: the model's default attention (SDPA), ``torch.optim.AdamW``
  with its CPU default (one tensor at a time), ``clip_grad_norm_`` default;
* ``eager attention``: ``attn_implementation="eager"`` (matmul + softmax; its backward is cheaper on CPU);
* ``fused AdamW``: ``AdamW(fused=True)`` (one kernel over all parameters, CPU since torch 2.4);
* ``foreach AdamW``: ``AdamW(foreach=True)``;
* ``foreach clip``: ``clip_grad_norm_(foreach=True)``;
* ``compile``: ``torch.compile(model, dynamic=True)``: its compile time is reported separately and the timed
  steps start after it;
* ``all kept``: the levers the loop now uses together (``training.speed``);
* ``+ frozen word emb``: ``all kept`` with the word embeddings fixed (``--freeze-word-embeddings``: no gradient
  or AdamW state for the vocabulary × width matrix); an option, not a default, since it changes what trains.

Reported: median ms per step, ex/s, and the median over rounds of each round's step time over the baseline's
on the same batch (< 1 is faster; pairing within a round keeps a shared machine's slow minutes out of it).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WIKIQA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "wikiqa" / "WikiQA-train.txt"
VARIANTS = ("baseline", "eager attention", "fused AdamW", "foreach AdamW", "foreach clip", "compile", "all kept",
            "+ frozen word emb")


def batches(tokenizer, n_batches: int, batch_size: int, max_length: int):
    from bertdistill.data.tokenize import encode_texts, length_grouped_batches, pad_batch

    lines = [x.split("\t") for x in WIKIQA.read_text(encoding="utf-8").splitlines()[:n_batches * batch_size * 4]]
    enc = encode_texts(tokenizer, [x[0] for x in lines], [x[1] for x in lines], max_length)
    labels = [int(x[2]) for x in lines]
    lengths = [len(x) for x in enc["input_ids"]]
    out = []
    for idx in length_grouped_batches(lengths, batch_size, seed=0)[:n_batches]:
        b = pad_batch([{**{k: enc[k][i] for k in enc}, "label": labels[i]} for i in idx], tokenizer.pad_token_id)
        out.append(b)
    return out


def make_variant(name: str, base_model, lr: float):
    import torch

    from bertdistill.training.speed import fast_optimizer_kwargs, use_fast_attention

    model = copy.deepcopy(base_model).train()
    if name in ("eager attention",):
        model.set_attn_implementation("eager")
    kept = name in ("all kept", "+ frozen word emb")
    if kept:
        use_fast_attention(model, torch.device("cpu"))
    if name == "+ frozen word emb":
        model.get_input_embeddings().weight.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in params if n.endswith("bias") or "LayerNorm" in n]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = {"fused": True} if name == "fused AdamW" else {"foreach": True} if name == "foreach AdamW" else {}
    if kept:
        kwargs = fast_optimizer_kwargs(torch.device("cpu"))
    opt = torch.optim.AdamW(groups, lr=lr, **kwargs)
    forward = torch.compile(model, dynamic=True) if name == "compile" else model
    clip_kwargs = {"foreach": True} if name == "foreach clip" else {}
    return model, forward, opt, clip_kwargs


def main() -> None:
    import torch

    from bertdistill.models import default_model_path, load_classifier, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 3])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--model", help="time this Hugging Face classifier directory instead (e.g. a pruned student)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    src = default_model_path()
    tok = load_tokenizer(args.model or src)
    data = batches(tok, args.steps + 2, args.batch_size, args.max_length)
    names = args.variants.split(",")
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
    print(f"batch {args.batch_size}, WikiQA rows length-grouped, max length {args.max_length} (mean padded length "
          f"{statistics.mean(b['input_ids'].shape[1] for b in data):.1f}), {args.precision}, {args.threads} threads, "
          f"{args.steps} timed steps per variant after 2 warm-up steps, interleaved in rotated order")
    for layers in ([None] if args.model else args.layers):
        torch.manual_seed(0)
        base = load_classifier(args.model or src, None if args.model else ["0", "1"])
        if layers is not None and layers < base.config.num_hidden_layers:
            base.bert.encoder.layer = base.bert.encoder.layer[:layers]
            base.config.num_hidden_layers = layers
        variants = {n: make_variant(n, base, 5e-5) for n in names}
        times: dict[str, list[float]] = {n: [] for n in names}
        setup: dict[str, float] = {}

        def step(name, batch):
            model, forward, opt, clip_kwargs = variants[name]
            with ctx():
                out = forward(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              token_type_ids=batch["token_type_ids"])
                logits = out.logits.float()
                loss = (torch.nn.functional.cross_entropy(logits, batch["label"]) if logits.shape[-1] > 1 else
                        torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], batch["label"].float()))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, **clip_kwargs)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return float(loss.detach())

        for name in names:  # warm-up (and compilation) outside the timed rounds
            t0 = time.perf_counter()
            for b in data[:2]:
                step(name, b)
            setup[name] = time.perf_counter() - t0
        losses = {n: [] for n in names}
        for i, b in enumerate(data[2:]):
            for k in range(len(names)):
                name = names[(k + i) % len(names)]
                t0 = time.perf_counter()
                losses[name].append(step(name, b))
                times[name].append(time.perf_counter() - t0)
        base_name = names[0]
        title = args.model or f"{layers}-layer MiniLM"
        print(f"\n{title} ({base.config.num_hidden_layers} layers, width {base.config.hidden_size}, "
              f"{sum(p.numel() for p in base.parameters()) / 1e6:.1f}M parameters)")
        print(f"  {'variant':18s} {'ms/step':>8s} {'ex/s':>7s} {'time vs ' + names[0]:>18s} {'warm-up s':>9s} "
              f"{'last loss':>9s}")
        for name in names:
            med = statistics.median(times[name])
            paired = statistics.median(t / b for t, b in zip(times[name], times[base_name]))
            print(f"  {name:18s} {med * 1000:8.1f} {args.batch_size / med:7.1f} {paired:17.3f}x "
                  f"{setup[name]:9.1f} {losses[name][-1]:9.4f}")


if __name__ == "__main__":
    main()
