"""BERT family (MiniLM has BERT's layout): the tiny builder of the family matrix, and what is BERT's own."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import save_tiny_model, write_tokenizer

FAMILY = "bert"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    from transformers import BertConfig

    vocab = write_tokenizer(path, "wordpiece")
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn or 2 * hidden, max_position_embeddings=128)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_a_base_bert_prunes_with_its_pooler(tmp_path):
    """A base BertModel keeps its pooler, sliced on both sides."""
    from transformers import AutoModel

    from bertdistill.prune.shrink import PrunePlan, shrink_model

    model = AutoModel.from_pretrained(tiny(tmp_path / "m", classifier=False)).eval()
    keep = list(range(0, 64, 2))
    plan = PrunePlan(layers=[1], hidden=keep, heads=[[0, 1]], qk_rows=[list(range(32))], v_rows=[list(range(32))],
                     ffn=[list(range(64))], head_size=16, source_head_size=16)
    small = shrink_model(model, plan)
    assert torch.equal(small.pooler.dense.weight, model.pooler.dense.weight[keep][:, keep])
    assert small.config.num_hidden_layers == 1 and small.config.hidden_size == 32
