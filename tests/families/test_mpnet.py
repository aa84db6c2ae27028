"""MPNet family: attention.attn.{q,k,v,o}, a relative position bias shared by all layers, no token types."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "mpnet"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    from transformers import MPNetConfig

    vocab = write_tokenizer(path, "mpnet")
    config = MPNetConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn or 2 * hidden, max_position_embeddings=130, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_pruning_keeps_the_same_heads_in_every_layer(tmp_path):
    """The position bias table has one column per head for all layers, so every layer keeps the same heads:
    those with the largest importance summed over the kept layers; the table keeps their columns."""
    import numpy as np
    from transformers import AutoModelForSequenceClassification

    from bertdistill.prune.importance import ImportanceScores, make_plan
    from bertdistill.prune.shrink import shrink_model

    model = AutoModelForSequenceClassification.from_pretrained(tiny(tmp_path / "m")).eval()
    scores = ImportanceScores(heads=np.array([[5.0, 0, 1, 0], [0, 0, 1, 5.0]]), ffn=np.ones((2, 128)),
                              hidden_embeddings=np.ones(64), hidden_layers=np.ones((2, 64)), blocks=np.ones(2))
    plan = make_plan(scores, [0, 1], hidden=32, heads=2, ffn=128, source_head_size=16, shared_heads=True)
    assert plan.heads == [[0, 3], [0, 3]]
    small = shrink_model(model, plan)
    bias = model.mpnet.encoder.relative_attention_bias.weight
    assert (small.mpnet.encoder.relative_attention_bias.weight == bias[:, [0, 3]]).all()
