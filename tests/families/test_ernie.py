"""ERNIE family: the tiny builder of the family matrix (BERT's layout with task-type embeddings)."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "ernie"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    from transformers import ErnieConfig

    vocab = write_tokenizer(path, "wordpiece")
    config = ErnieConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn or 2 * hidden, max_position_embeddings=128, use_task_id=True,
                         task_type_vocab_size=3)
    return save_tiny_model(path, config, label_names, classifier, seed)
