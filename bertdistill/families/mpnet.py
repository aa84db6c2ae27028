"""MPNet: BERT-like post-LN layers with ``attention.attn.{q,k,v,o}``, a relative position bias shared by all
layers, no token types."""

from __future__ import annotations

from bertdistill.families import HEADS, HIDDEN, Family, PruneRules, register


@register
class MPNet(Family):
    name = "mpnet"
    model_types = ("mpnet",)
    query, key, value = "attention.attn.q", "attention.attn.k", "attention.attn.v"
    attention_output = "attention.attn.o"
    norms = ("attention.LayerNorm", "output.LayerNorm")
    token_types = False
    shared_heads = "MPNet's relative position bias (encoder.relative_attention_bias) is one table for all layers"

    def output_linear_paths(self):
        return ("classifier.out_proj",)

    def prune_rules(self, config) -> PruneRules:
        rules = super().prune_rules(config)
        rules.base.update({"encoder.relative_attention_bias": (None, HEADS), "pooler.dense": (HIDDEN, HIDDEN)})
        rules.droppable = ("pooler",)
        return rules

    def head_rules(self, config):
        return {"classifier.dense": (HIDDEN, HIDDEN), "classifier.out_proj": (None, HIDDEN)}
