"""RoBERTa, XLM-R and CamemBERT: BERT's layers, one token type, a classification head over <s>."""

from __future__ import annotations

from bertdistill.families import HIDDEN, register
from bertdistill.families.bert import Bert


@register
class Roberta(Bert):
    """The base model's pooler (RobertaModel) is pruned like BERT's; the classifier has a head of its own."""

    name = "roberta"
    model_types = ("roberta", "xlm-roberta", "camembert")

    def output_linear_paths(self):
        return ("classifier.out_proj",)

    def head_rules(self, config):
        return {"classifier.dense": (HIDDEN, HIDDEN), "classifier.out_proj": (None, HIDDEN)}
