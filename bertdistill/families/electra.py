"""ELECTRA: BERT's layers; embeddings narrower than the hidden size are projected up (``embeddings_project``)."""

from __future__ import annotations

from bertdistill.errors import UserError
from bertdistill.families import HIDDEN, Family, FlopsDims, register


def _projected(config) -> bool:
    return int(getattr(config, "embedding_size", config.hidden_size)) != int(config.hidden_size)


@register
class Electra(Family):
    name = "electra"
    model_types = ("electra",)

    def output_linear_paths(self):
        return ("classifier.out_proj",)

    def embedding_output(self, model):
        if _projected(model.config):
            return self.base(model).get_submodule("embeddings_project")
        return super().embedding_output(model)

    def embedding_rules(self, config):
        if not _projected(config):
            return super().embedding_rules(config)
        # The embeddings keep their own width; the projection's rows are the residual stream.
        rules = {name: (None, None) for name in ("embeddings.word_embeddings", "embeddings.position_embeddings",
                                                 "embeddings.token_type_embeddings")}
        rules.update({self.embedding_norm: (None,), "embeddings_project": (HIDDEN, None)})
        return rules

    def head_rules(self, config):
        return {"classifier.dense": (HIDDEN, HIDDEN), "classifier.out_proj": (None, HIDDEN)}

    def with_shape(self, config, layers=None, hidden=None, heads=None, ffn=None, head_size=None):
        new = super().with_shape(config, layers, hidden, heads, ffn, head_size)
        if hidden is not None and not _projected(config):
            new.embedding_size = int(hidden)
        return new

    def check_width(self, config, hidden, where):
        if _projected(config) and hidden == int(config.embedding_size):
            raise UserError(f"--hidden {hidden} equals ELECTRA's embedding size, which would drop its embedding "
                            "projection", where, f"choose a width other than {hidden}")

    def flops_dims(self, config) -> FlopsDims:
        return FlopsDims(embedding_projection=int(config.embedding_size) if _projected(config) else 0)
