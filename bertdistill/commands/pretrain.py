"""``bertdistill pretrain-student``: TMKD stage 1, distilling the teachers on an unlabeled corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.commands import finetune as f

NAME = "pretrain-student"
HELP = """Stage 1 of TMKD: train a student to imitate the teachers on unlabeled question-passage
pairs labeled by `bertdistill label` (--labels) or with the teachers run in the loop (--teacher); soft
losses only: KD per teacher head or averaged, optional PKD and the --term losses.
The output is a Hugging Face model that `finetune --student-from` takes for stage 2.

Example (after bertdistill corpus and bertdistill label, see the README):
  bertdistill pretrain-student --data runs/corpus.jsonl --labels runs/labels-corpus --student-layers 3 \\
      --pkd skip --epochs 1 --mixed-precision auto --save-every 500 --output runs/stage1
"""


def command(
    config_file: c.ConfigFile = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    task: c.Task = None, limit: c.Limit = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Teacher label store of the corpus.",
                                                   rich_help_panel=f.DISTILL)] = None,
    eval_data: f.EvalData = None, eval_split: f.EvalSplit = None, eval_data_config: f.EvalDataConfig = None,
    eval_labels: Annotated[Optional[Path], typer.Option("--eval-labels", help="Label store of --eval-data.",
                                                        rich_help_panel=f.DISTILL)] = None,
    eval_fraction: Annotated[float, typer.Option(
        "--eval-fraction", help="Held-out share of the corpus when no --eval-data (0: no evaluation).",
        rich_help_panel=c.DATA_PANEL)] = 0.02,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output model directory.")] = Path(
        "student-stage1"),
    student_from: f.StudentFrom = None, student_layers: f.StudentLayers = None, layer_map: f.LayerMap = "first",
    student_config_path: f.StudentConfigOpt = None, head: f.Head = "classes",
    student_dropout: f.StudentDropout = None,
    teacher_mode: f.TeacherMode = None, teacher_weights: f.TeacherWeights = None, teachers: f.Teachers = None,
    temperature: f.Temperature = 2.0, kd_loss: f.KdLoss = "kl", pkd: f.Pkd = "none", pkd_beta: f.PkdBeta = 10.0,
    pkd_projection: f.PkdProjection = True, teacher: f.TeacherModels = None, term: f.Terms = None,
    match_layers: f.MatchLayers = "skip", relation_heads: f.RelationHeads = None,
    # epochs, lr, warmup_ratio and save_every: training.config.STAGE1_TRAIN_DEFAULTS (distill's stage 1 uses them)
    epochs: f.Epochs = 1.0, max_steps: f.MaxSteps = None,
    time_budget: f.TimeBudget = None,
    batch_size: c.BatchSize = 32, grad_accum: f.GradAccum = 1, lr: f.Lr = 1e-4, warmup_ratio: f.Warmup = 0.05,
    weight_decay: f.WeightDecay = 0.01, seed: f.Seed = 42, mixed_precision: f.MixedPrecision = None,
    eval_every: f.EvalEvery = None, save_every: f.SaveEvery = 1000, max_length: c.MaxLength = 128,
    keep_checkpoints: f.KeepCheckpoints = False, report_to: f.ReportTo = "none", log_every: f.LogEvery = None,
    freeze_word_embeddings: f.FreezeWordEmbeddings = False,
    overwrite: c.Overwrite = False, resume: f.Resume = False,
    trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.training.config import DistillConfig, PretrainConfig, TrainConfig
    from bertdistill.training.pretrain import pretrain_student

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, None, None, task,
                       None, True, limit)
    config = PretrainConfig(
        train_data=spec, labels=str(labels) if labels else "", teacher_models=teacher or None,
        eval_data=c.eval_data_spec(spec, eval_data, eval_split, eval_data_config),
        eval_labels=str(eval_labels) if eval_labels else None, eval_fraction=eval_fraction,
        output=str(output) if output else "",
        student=f.student_config(student_from, None, student_layers, layer_map, student_config_path,
                                 trust_remote_code, head, student_dropout),
        train=TrainConfig(epochs=epochs, max_steps=max_steps, time_budget=time_budget,
                          batch_size=c.check_positive(batch_size, "--batch-size"), grad_accum=grad_accum, lr=lr,
                          warmup_ratio=warmup_ratio, weight_decay=weight_decay, seed=seed,
                          mixed_precision=mixed_precision, eval_every=eval_every, save_every=save_every,
                          max_length=max_length, keep_checkpoints=keep_checkpoints,
                          report_to=report_to, log_every=log_every, freeze_word_embeddings=freeze_word_embeddings),
        distill=DistillConfig(alpha=1.0, temperature=temperature, kd_loss=kd_loss, teacher_mode=teacher_mode,
                              teacher_weights=f.floats(teacher_weights, "--teacher-weights"),
                              teachers=c.split_list(teachers), pkd=pkd, pkd_beta=pkd_beta,
                              pkd_projection=pkd_projection, use_hard_labels=False, terms=f.term_weights(term),
                              match_layers=match_layers, relation_heads=relation_heads),
        overwrite=overwrite, resume=resume)
    config = c.with_config_file(config, config_file, f._fields("train_data"))
    c.require(config.output, "--output", "add --output DIR (the model directory to create)")
    c.guard_outputs(config.output, *c.spec_inputs(config.train_data), *c.spec_inputs(config.eval_data), data_config,
                    eval_data_config, config.labels or None, config.eval_labels, config.student.source,
                    student_config_path, list(config.teacher_models or []))
    pretrain_student(config)
