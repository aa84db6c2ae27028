"""Narrow students cut from a teacher: layers, heads, FFN neurons and hidden width, scored on data.

``prune(PruneConfig(...))`` scores the source model's parts on a calibration set
(``bertdistill.prune.importance``), keeps the top-scored ones (``make_plan``) and writes a plain
Hugging Face directory of the smaller model (``bertdistill.prune.shrink``) with ``prune_report.json``.
"""

from bertdistill.prune.config import LAYER_SELECTIONS, PruneConfig
from bertdistill.prune.run import PruneResult, prune

__all__ = ["LAYER_SELECTIONS", "PruneConfig", "PruneResult", "prune"]
