"""RoBERTa family (also XLM-R, CamemBERT): one token type, byte-level BPE, a classification head over <s>."""

from __future__ import annotations

from pathlib import Path

from conftest import save_tiny_model, write_tokenizer

FAMILY = "roberta"


def tiny(path: Path, layers: int = 2, hidden: int = 64, heads: int = 4, ffn: int | None = None,
         label_names=("0", "1"), classifier: bool = True, seed: int = 0, model_type: str = "roberta") -> Path:
    from transformers import AutoConfig

    vocab = write_tokenizer(path, "bpe")
    # As every real RoBERTa and XLM-R checkpoint: one token type, positions offset past the pad id.
    config = AutoConfig.for_model(model_type, vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                                  num_attention_heads=heads, intermediate_size=ffn or 2 * hidden,
                                  max_position_embeddings=130, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                                  eos_token_id=2)
    return save_tiny_model(path, config, label_names, classifier, seed)


def test_one_token_type_means_no_token_type_input(tmp_path):
    """The tokenizer may make token types (BERT-style tokenizers do); a one-type model never gets them."""
    from transformers import AutoConfig

    from bertdistill.families import input_names

    for model_type in ("roberta", "xlm-roberta", "camembert"):
        config = AutoConfig.from_pretrained(tiny(tmp_path / model_type, model_type=model_type))
        assert input_names(config) == ("input_ids", "attention_mask")


def test_finetune_with_a_wordpiece_tokenizer_does_not_feed_type_1(tmp_path):
    """The crash of issue 28: a BERT tokenizer gives token type 1 to the second text; RoBERTa has one row."""
    from transformers import AutoConfig, BertTokenizerFast

    from cli_helpers import run_cli
    from conftest import write_toy_pairs, write_vocab

    model = tiny(tmp_path / "m")
    for f in model.glob("tokenizer*"):
        f.unlink()
    vocab = write_vocab(model / "vocab.txt")
    BertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab)).save_pretrained(model)
    config = AutoConfig.from_pretrained(model)
    config.vocab_size = max(config.vocab_size, len(vocab.read_text().split()))
    save_tiny_model(model, config)
    data = write_toy_pairs(tmp_path / "toy.tsv", n=24)
    result = run_cli("finetune", "--model", model, "--data", data, "--output", tmp_path / "out", "--max-steps", 2,
                     "--max-length", 32, "--no-eval")
    assert result.code == 0, result.err
