"""``--freeze-word-embeddings`` (TrainConfig.freeze_word_embeddings): in each family the input word embeddings
come out of training unchanged while the rest trains; left at its default the setting stays out of the resume
and recipe fingerprints, so runs made before it existed still resume and count as done."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from cli_helpers import run_cli
from conftest import family_builders, write_toy_pairs

BUILDERS = family_builders()


def embedding_key(state: dict, source_state: dict) -> str:
    """The word-embedding matrix: the one 2-D tensor with a row per vocabulary entry (the largest first dim)."""
    return max((k for k, v in source_state.items() if v.dim() == 2 and "embed" in k), key=lambda k: source_state[k].shape[0])


@pytest.mark.parametrize("family", sorted(BUILDERS))
@pytest.mark.parametrize("freeze", [True, False])
def test_word_embeddings_stay_fixed_and_the_rest_trains(family, freeze, tmp_path):
    source = BUILDERS[family](tmp_path / family, layers=2, seed=1)
    write_toy_pairs(tmp_path / "train.tsv", n=32)
    out = tmp_path / "student"
    args = ["finetune", "--data", str(tmp_path / "train.tsv"), "--student-from", str(source), "--max-steps", "3",
            "--batch-size", "8", "--lr", "1e-2", "--max-length", "32", "--no-eval", "--output", str(out)]
    result = run_cli(*args, *(["--freeze-word-embeddings"] if freeze else []))
    assert result.code == 0, result.err + result.out
    before, after = load_file(str(source / "model.safetensors")), load_file(str(out / "model.safetensors"))
    key = embedding_key(after, before)
    assert before[key].shape[0] > 50, key  # the vocabulary's matrix, not position or token-type embeddings
    assert after[key].equal(before[key]) == freeze, key
    changed = [k for k in before if k in after and k != key and before[k].shape == after[k].shape
               and not after[k].equal(before[k])]
    assert changed, "the rest of the encoder must train"
    saved = json.loads((out / "training_config.json").read_text())["train"]
    assert saved["freeze_word_embeddings"] is freeze


def test_left_at_default_it_is_not_fingerprinted():
    from bertdistill.recipe.plan import fingerprint
    from bertdistill.training.config import FinetuneConfig, TrainConfig
    from bertdistill.training.record import run_fingerprint

    plain, frozen = FinetuneConfig(train=TrainConfig()), FinetuneConfig(train=TrainConfig(freeze_word_embeddings=True))
    assert "freeze_word_embeddings" not in run_fingerprint(plain)["train"]
    assert run_fingerprint(frozen)["train"]["freeze_word_embeddings"] is True
    assert fingerprint(plain, []) != fingerprint(frozen, [])
