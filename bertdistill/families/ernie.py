"""ERNIE: BERT's layout, plus task-type embeddings when the config uses task ids."""

from __future__ import annotations

from bertdistill.families import HIDDEN, register
from bertdistill.families.bert import Bert


@register
class Ernie(Bert):
    name = "ernie"
    model_types = ("ernie",)

    def embedding_rules(self, config):
        rules = super().embedding_rules(config)
        rules["embeddings.task_type_embeddings"] = (None, HIDDEN)
        return rules
