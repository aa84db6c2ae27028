"""BERT (and MiniLM, which has BERT's layout): post-LN layers, separate query/key/value, a pooler."""

from __future__ import annotations

from bertdistill.errors import UserError
from bertdistill.families import HIDDEN, Family, PruneRules, register


@register
class Bert(Family):
    name = "bert"
    model_types = ("bert",)

    def prune_rules(self, config) -> PruneRules:
        rules = super().prune_rules(config)
        rules.base["pooler.dense"] = (HIDDEN, HIDDEN)
        rules.droppable = ("pooler",)
        return rules

    def check_prunable(self, model, where):
        config = model.config
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            raise UserError("models with cross-attention (decoders) are not supported", where,
                            "prune an encoder (BertModel or BertForSequenceClassification)")
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            raise UserError(f"position embeddings {config.position_embedding_type!r} are not supported", where,
                            "use a BERT with absolute position embeddings")
