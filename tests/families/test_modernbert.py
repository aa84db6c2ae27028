"""ModernBERT family: fused Wqkv, gated FFN, rotary positions (whole heads), per-layer attention types."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "modernbert"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    from transformers import AutoTokenizer, ModernBertConfig

    vocab = write_tokenizer(path, "wordpiece")
    tok = AutoTokenizer.from_pretrained(path)
    config = ModernBertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=heads, intermediate_size=ffn or 2 * hidden,
                              max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                              cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                              global_attn_every_n_layers=2, local_attention=16)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_student_layers_keep_their_attention_type(tmp_path):
    """Layer 2 of 3 is a sliding-window layer; copied first, it stays one (layer_types follows the source)."""
    from bertdistill.student.build import build_classifier
    from bertdistill.student.config import StudentConfig

    source = tiny(tmp_path / "m", layers=3)
    model, _, info = build_classifier(StudentConfig(source=str(source), layers=2, layer_map="2,3"), ["0", "1"])
    assert model.config.layer_types == ["sliding_attention", "full_attention"]
    assert any("loses its attention LayerNorm" in note for note in info["layer_notes"])


def test_narrower_heads_are_refused(tmp_path):
    from cli_helpers import assert_user_error, run_cli
    from conftest import write_toy_pairs

    data = write_toy_pairs(tmp_path / "toy.tsv", n=16)
    result = run_cli("prune", "--model", tiny(tmp_path / "m"), "--data", data, "--output", tmp_path / "out",
                     "--hidden", 32, "--heads", 4, "--quiet", "--max-length", 32)
    assert_user_error(result, "rotary", "--heads")


def test_fused_qkv_is_captured_as_query_key_value(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertdistill.student.features import FeatureRequest, forward_features

    model = AutoModelForSequenceClassification.from_pretrained(tiny(tmp_path / "m")).eval()
    ids = torch.randint(5, 40, (2, 7))
    with torch.no_grad():
        _, features = forward_features(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                                       FeatureRequest(qkv=frozenset({1}), hidden=frozenset({0})))
        fused = model.model.layers[0].attn.Wqkv(features.hidden[0])  # layer 1 has no attention norm
    q, k, v = features.qkv[1]
    assert torch.allclose(torch.cat([q, k, v], -1), fused, atol=1e-6) and q.shape == (2, 7, 64)
