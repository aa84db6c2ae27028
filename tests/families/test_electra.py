"""ELECTRA family: BERT's layers; embeddings narrower than the hidden size go through ``embeddings_project``."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "electra"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0, embedding_size: int | None = None) -> Path:
    from transformers import ElectraConfig

    vocab = write_tokenizer(path, "wordpiece")
    # As ELECTRA-small: embeddings narrower than the hidden width, projected up.
    config = ElectraConfig(vocab_size=vocab, embedding_size=embedding_size or hidden * 3 // 8, hidden_size=hidden,
                           num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn or 2 * hidden,
                           max_position_embeddings=128)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_width_pruning_cuts_the_projection_not_the_embeddings(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertdistill.prune.shrink import PrunePlan, shrink_model

    model = AutoModelForSequenceClassification.from_pretrained(tiny(tmp_path / "m")).eval()
    keep = list(range(8, 56))
    plan = PrunePlan(layers=[0, 1], hidden=keep, heads=[[0, 1, 2]] * 2, qk_rows=[list(range(48))] * 2,
                     v_rows=[list(range(48))] * 2, ffn=[list(range(128))] * 2, head_size=16, source_head_size=16)
    small = shrink_model(model, plan)
    assert small.config.embedding_size == 24 and small.config.hidden_size == 48
    assert torch.equal(small.electra.embeddings.word_embeddings.weight, model.electra.embeddings.word_embeddings.weight)
    assert torch.equal(small.electra.embeddings_project.weight, model.electra.embeddings_project.weight[keep])


def test_a_width_equal_to_the_embedding_size_is_refused(tmp_path):
    from cli_helpers import assert_user_error, run_cli
    from conftest import write_toy_pairs

    data = write_toy_pairs(tmp_path / "toy.tsv", n=16)
    result = run_cli("prune", "--model", tiny(tmp_path / "m"), "--data", data, "--output", tmp_path / "out",
                     "--hidden", 24, "--heads", 3, "--quiet", "--max-length", 32)
    assert_user_error(result, "equals ELECTRA's embedding size", "--hidden")
