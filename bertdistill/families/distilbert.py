"""DistilBERT: ``transformer.layer[i]`` with ``attention.{q,k,v,out}_lin`` and ``ffn.lin{1,2}``, no token types,
a ``pre_classifier`` dense before the classifier."""

from __future__ import annotations

from bertdistill.families import HIDDEN, Family, register


@register
class DistilBert(Family):
    name = "distilbert"
    model_types = ("distilbert",)
    layers_path = "transformer.layer"
    query, key, value = "attention.q_lin", "attention.k_lin", "attention.v_lin"
    attention_output = "attention.out_lin"
    ffn_input, ffn_output = "ffn.lin1", "ffn.lin2"
    norms = ("sa_layer_norm", "output_layer_norm")
    config_keys = {"layers": "n_layers", "hidden": "dim", "heads": "n_heads", "ffn": "hidden_dim"}
    token_types = False

    def head_rules(self, config):
        return {"pre_classifier": (HIDDEN, HIDDEN), "classifier": (None, HIDDEN)}
