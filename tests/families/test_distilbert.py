"""DistilBERT family: transformer.layer[i] with q_lin/k_lin/v_lin/out_lin, ffn.lin1/lin2, config keys dim/n_heads."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "distilbert"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    from transformers import DistilBertConfig

    vocab = write_tokenizer(path, "wordpiece")
    config = DistilBertConfig(vocab_size=vocab, dim=hidden, n_layers=layers, n_heads=heads,
                              hidden_dim=ffn or 2 * hidden, max_position_embeddings=128)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_a_random_student_sets_distilberts_own_config_keys(tmp_path):
    from bertdistill.student.build import build_classifier
    from bertdistill.student.config import StudentConfig

    model, _, info = build_classifier(StudentConfig(source=str(tiny(tmp_path / "m")), random_init=True, layers=1,
                                                    width=32, heads=2, intermediate=48), ["0", "1"])
    c = model.config
    assert (c.n_layers, c.dim, c.n_heads, c.hidden_dim) == (1, 32, 2, 48)
    assert info["layers"] == 1 and info["width"] == 32
