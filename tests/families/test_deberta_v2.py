"""DeBERTa-v2/v3 family: *_proj attention with disentangled relative positions, no token types in v3."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "deberta-v2"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0, share_att_key: bool = True) -> Path:
    from transformers import DebertaV2Config

    vocab = write_tokenizer(path, "unigram")
    # DeBERTa-v3's settings: no absolute positions, no token types, relative attention with shared keys.
    config = DebertaV2Config(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, intermediate_size=ffn or 2 * hidden,
                             max_position_embeddings=128, type_vocab_size=0, position_biased_input=False,
                             relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
                             max_relative_positions=-1, share_att_key=share_att_key, norm_rel_ebd="layer_norm",
                             pooler_hidden_size=hidden)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_separate_position_projections_prune_exactly(tmp_path):
    """Without a shared key, pos_query_proj/pos_key_proj are sliced like the query/key: the identity plan is
    exact, and a narrower head (queries rescaled, positional queries too) keeps the kept dims' scores."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertdistill.prune.shrink import identity_plan, shrink_model

    model = AutoModelForSequenceClassification.from_pretrained(tiny(tmp_path / "m", share_att_key=False)).eval()
    assert model.deberta.encoder.layer[0].attention.self.pos_key_proj is not None
    ids = torch.randint(5, 40, (2, 9))
    with torch.no_grad():
        ref = model(input_ids=ids).logits
        same = shrink_model(model, identity_plan(model))(input_ids=ids).logits
    assert torch.allclose(ref, same, atol=1e-6)
