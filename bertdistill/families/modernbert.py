"""ModernBERT: pre-LN layers ``layers[i]`` with a fused ``attn.Wqkv``, a gated FFN ``mlp.Wi`` ([up; gate]),
rotary positions, alternating global and sliding-window attention (``config.layer_types``), no token types.
The first layer has no attention LayerNorm (the embeddings' norm serves)."""

from __future__ import annotations

from bertdistill.families import HIDDEN, Family, FlopsDims, PruneRules, register


@register
class ModernBert(Family):
    name = "modernbert"
    model_types = ("modernbert",)
    layers_path = "layers"
    query = key = value = None
    qkv = "attn.Wqkv"
    attention_output = "attn.Wo"
    ffn_input, ffn_output = "mlp.Wi", "mlp.Wo"
    gated_ffn = True
    norms = ("attn_norm", "mlp_norm")
    embedding_norm = "embeddings.norm"
    token_types = False
    whole_heads = "ModernBERT rotates query/key pairs within each head (rotary positions)"

    def embedding_rules(self, config):
        return {"embeddings.tok_embeddings": (None, HIDDEN), self.embedding_norm: (HIDDEN,)}

    def prune_rules(self, config) -> PruneRules:
        rules = super().prune_rules(config)
        rules.base["final_norm"] = (HIDDEN,)
        return rules

    def head_rules(self, config):
        return {"head.dense": (HIDDEN, HIDDEN), "head.norm": (HIDDEN,), "classifier": (None, HIDDEN)}

    def set_layer_settings(self, new, source, kept):
        if kept is not None:
            new.layer_types = [source.layer_types[i] for i in kept]
        else:
            every = int(getattr(new, "global_attn_every_n_layers", 1) or 1)
            new.layer_types = ["full_attention" if i % every == 0 else "sliding_attention"
                               for i in range(int(new.num_hidden_layers))]

    def copy_tolerated(self, key: str) -> bool:
        return key.startswith("attn_norm.")

    def copy_notes(self, layers):
        notes = []
        if layers and layers[0] != 1:
            notes.append(f"source layer {layers[0]} comes first and loses its attention LayerNorm "
                         "(ModernBERT's first layer has none: the embeddings' norm serves)")
        if 1 in layers[1:]:
            notes.append("source layer 1 moves down and gets a new attention LayerNorm (initialized to identity "
                         "scale)")
        return notes

    def flops_dims(self, config) -> FlopsDims:
        return FlopsDims(gated_ffn=True)
