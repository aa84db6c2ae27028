"""Analytic FLOPs per example: hand counts for tiny shapes, and torch's own FLOP counter on a real BERT."""

from __future__ import annotations

import pytest


def test_one_layer_hand_count():
    """H=4, 2 heads, F=8, 1 layer, n=3 tokens, 2 labels, counted term by term (2 FLOPs per multiply-add)."""
    from bertdistill.flops import encoder_flops, layer_flops

    qkv = 3 * 2 * 3 * 4 * 4      # 3 projections, n·H·W multiply-adds each: 288
    scores = 2 * 3 * 3 * 4       # Q·Kᵀ, n·n·W: 72
    context = 2 * 3 * 3 * 4      # probs·V: 72
    out_proj = 2 * 3 * 4 * 4     # 96
    ffn = 2 * (2 * 3 * 4 * 8)    # up and down: 384
    assert layer_flops(3, hidden=4, intermediate=8) == qkv + scores + context + out_proj + ffn == 912
    pooler, classifier = 2 * 4 * 4, 2 * 4 * 2
    assert encoder_flops(3, hidden=4, layers=1, intermediate=8, num_labels=2) == 912 + pooler + classifier == 960


def test_mean_over_real_lengths_from_config():
    """Two examples of 3 and 5 tokens, 2 layers: the mean of the two hand counts."""
    from transformers import BertConfig

    from bertdistill.flops import flops_per_example

    config = BertConfig(vocab_size=10, hidden_size=4, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=8, num_labels=2, architectures=["BertForSequenceClassification"])
    n3 = 2 * 912 + 32 + 16
    n5 = 2 * (8 * 5 * 4 * 4 + 4 * 5 * 4 * 8 + 4 * 25 * 4) + 32 + 16  # 2·1680 + 48
    assert flops_per_example(config, [3, 5]) == (n3 + n5) / 2 == 2640
    config.architectures = ["BertModel"]  # a base encoder has no classifier term
    assert flops_per_example(config, [3]) == n3 - 16
    with pytest.raises(ValueError):
        flops_per_example(config, [])


def test_matches_torch_flop_counter():
    """torch's FLOP counter on a real (eager-attention) BertForSequenceClassification counts the same matmuls."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertConfig, BertForSequenceClassification

    from bertdistill.flops import flops_per_example

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=24, num_labels=3)
    config._attn_implementation = "eager"
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(5, 50, (1, 7))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    assert counter.get_total_flops() == flops_per_example(config, [7], num_labels=3)
