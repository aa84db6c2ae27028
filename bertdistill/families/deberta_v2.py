"""DeBERTa-v2/v3: ``attention.self.{query,key,value}_proj`` with disentangled relative attention (relative
embeddings projected by each layer's query/key projections), optional embedding projection, a ContextPooler."""

from __future__ import annotations

from bertdistill.errors import UserError
from bertdistill.families import HIDDEN, KEY, QUERY, Family, FlopsDims, PruneRules, register


def _projected(config) -> bool:
    return int(getattr(config, "embedding_size", None) or config.hidden_size) != int(config.hidden_size)


@register
class DebertaV2(Family):
    name = "deberta-v2"
    model_types = ("deberta-v2",)
    query, key, value = "attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj"

    def prune_rules(self, config) -> PruneRules:
        rules = super().prune_rules(config)
        # Without a shared key, positions have projections of their own, sliced like the query and key.
        rules.layer.update({"attention.self.pos_query_proj": (QUERY, HIDDEN),
                            "attention.self.pos_key_proj": (KEY, HIDDEN)})
        rules.base.update({"encoder.rel_embeddings": (None, HIDDEN), "encoder.LayerNorm": (HIDDEN,)})
        return rules

    def embedding_rules(self, config):
        width = None if _projected(config) else HIDDEN
        rules = {name: (None, width) for name in ("embeddings.word_embeddings", "embeddings.position_embeddings",
                                                   "embeddings.token_type_embeddings")}
        rules[self.embedding_norm] = (HIDDEN,)  # after the projection: hidden-wide either way
        if _projected(config):
            rules["embeddings.embed_proj"] = (HIDDEN, None)
        return rules

    def head_rules(self, config):
        return {"pooler.dense": (HIDDEN, HIDDEN), "classifier": (None, HIDDEN)}

    def with_shape(self, config, layers=None, hidden=None, heads=None, ffn=None, head_size=None):
        new = super().with_shape(config, layers, hidden, heads, ffn, head_size)
        if hidden is not None:
            if not _projected(config) and getattr(config, "embedding_size", None) is not None:
                new.embedding_size = int(hidden)
            if int(getattr(config, "pooler_hidden_size", config.hidden_size)) == int(config.hidden_size):
                new.pooler_hidden_size = int(hidden)
        return new

    def check_prunable(self, model, where):
        if int(getattr(model.config, "conv_kernel_size", 0) or 0) > 0:
            raise UserError("DeBERTa-v2 with a convolution layer (conv_kernel_size > 0) cannot be pruned", where,
                            "prune a DeBERTa-v3 model (no convolution), or train a student of chosen layers")
        if int(getattr(model.config, "pooler_hidden_size", model.config.hidden_size)) != int(model.config.hidden_size):
            raise UserError("a pooler width other than the hidden size cannot be pruned", where,
                            "use a model whose pooler_hidden_size equals hidden_size")

    def check_width(self, config, hidden, where):
        if _projected(config) and hidden == int(config.embedding_size):
            raise UserError(f"--hidden {hidden} equals DeBERTa's embedding size, which would drop its embedding "
                            "projection", where, f"choose a width other than {hidden}")

    def flops_dims(self, config) -> FlopsDims:
        terms = 0
        span = 0
        if getattr(config, "relative_attention", False):
            pos = getattr(config, "pos_att_type", None) or []
            pos = pos.split("|") if isinstance(pos, str) else list(pos)
            terms = sum(1 for t in pos if t.strip() in ("c2p", "p2c"))
            buckets = int(getattr(config, "position_buckets", -1) or -1)
            max_rel = int(getattr(config, "max_relative_positions", -1) or -1)
            span = 2 * (buckets if buckets > 0 else (max_rel if max_rel > 0 else int(config.max_position_embeddings)))
        return FlopsDims(embedding_projection=int(config.embedding_size) if _projected(config) else 0,
                         relative_span=span, relative_terms=terms)
