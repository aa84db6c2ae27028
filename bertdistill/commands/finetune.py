"""``bertdistill finetune``: fine-tune a classifier, or distill a student from a teacher label store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bertdistill.commands import common as c
from bertdistill.devices import MIXED_PRECISION

NAME = "finetune"
HELP = """Fine-tune a sequence classifier, or distill a student from teachers: their stored outputs
(--labels) or the teacher models run in the loop (--teacher). Loss terms: KD (multi-teacher TMKD heads
or averaged targets), PKD on intermediate [CLS] states, and with --term the TinyBERT hidden-state and
attention-map terms and the MiniLM attention and value relations.

Examples:
  bertdistill finetune --data ../shared/datasets/glue/RTE/train.tsv \\
      --eval-data ../shared/datasets/glue/RTE/dev.tsv --mixed-precision auto --output runs/rte-teacher
  bertdistill finetune --data ../shared/datasets/wikiqa/WikiQA-train.txt --columns query,passage,label \\
      --task ranking --eval-data ../shared/datasets/wikiqa/WikiQA-dev.txt --labels runs/labels-train \\
      --student-layers 3 --pkd skip --alpha 0.7 --temperature 2 --output runs/student
  bertdistill finetune --data ../shared/datasets/glue/RTE/train.tsv --teacher t1=runs/rte-teacher \
      --student-layers 3 --term minilm_attention=1 --term minilm_value=1 --output runs/rte-student
"""

STUDENT = "Student"
DISTILL = "Distillation"
TRAIN = "Training"

EvalData = Annotated[Optional[Path], typer.Option("--eval-data", help="Eval file (same column mapping as --data).",
                                                  rich_help_panel=c.DATA_PANEL)]
EvalSplit = Annotated[Optional[str], typer.Option(
    "--eval-split", help="Eval on this split of the same hub data set (e.g. validation).",
    rich_help_panel=c.DATA_PANEL)]
EvalDataConfig = Annotated[Optional[Path], typer.Option(
    "--eval-data-config", help="JSON data config of the eval data, for an eval file laid out unlike --data.",
    rich_help_panel=c.DATA_PANEL)]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", help="Output model directory (required).")]
StudentFrom = Annotated[Optional[str], typer.Option(
    "--student-from", help="Model whose layers start the student (pre-trained, or a pretrain-student output). "
    "Default: the first teacher's directory when --student-layers keeps fewer of its layers, else the packaged MiniLM.",
    rich_help_panel=STUDENT)]
StudentLayers = Annotated[Optional[int], typer.Option("--student-layers", help="Encoder layers kept (default: all).",
                                                      rich_help_panel=STUDENT)]
LayerMap = Annotated[str, typer.Option("--layer-map", help="Which layers: first, skip (evenly spaced) or 1-based i,j,k.",
                                       rich_help_panel=STUDENT)]
StudentDropout = Annotated[Optional[float], typer.Option(
    "--student-dropout", help="Set every dropout probability of the student (hidden, attention, classifier) to this; "
                              "0 trains a small student about a quarter faster on CPU (default: the source's).",
    rich_help_panel=STUDENT)]
Head = Annotated[str, typer.Option(
    "--head", help="classes (one logit per label, softmax) or score (one relevance logit for binary/ranking data: "
                   "BCE on gold labels, sigmoid probabilities; ranks with sentence-transformers' CrossEncoder).",
    rich_help_panel=STUDENT)]
StudentConfigOpt = Annotated[Optional[Path], typer.Option(
    "--student-config", help='JSON file (or inline JSON) with the shape of a randomly initialized student, e.g. '
         '{"layers": 3, "width": 256, "heads": 4}.',
    rich_help_panel=STUDENT)]
TeacherMode = Annotated[Optional[c.choice("TeacherMode", ("heads", "avg"))], typer.Option(
    "--teacher-mode", help="heads (TMKD: one head per teacher; default for several) or avg (averaged target).",
    rich_help_panel=DISTILL)]
TeacherWeights = Annotated[Optional[str], typer.Option("--teacher-weights", help="Per-teacher weights, e.g. 1,1,2.",
                                                       rich_help_panel=DISTILL)]
Teachers = Annotated[Optional[str], typer.Option("--teachers", help="Use only these teachers of the store.",
                                                 rich_help_panel=DISTILL)]
Temperature = Annotated[float, typer.Option("--temperature", "-T", help="Softmax temperature T of the KD loss.",
                                            rich_help_panel=DISTILL)]
KdLoss = Annotated[c.choice("KdLoss", ("kl", "mse")), typer.Option("--kd-loss", help="kl (T²·KL of softened probabilities) or mse (on logits).",
                                     rich_help_panel=DISTILL)]
Pkd = Annotated[c.choice("Pkd", ("none", "skip", "last")), typer.Option("--pkd", help="Patient KD on [CLS] states: none, skip or last.",
                                  rich_help_panel=DISTILL)]
PkdBeta = Annotated[float, typer.Option("--pkd-beta", help="Weight β of the PKD loss.", rich_help_panel=DISTILL)]
PkdProjection = Annotated[bool, typer.Option(
    "--pkd-projection/--no-pkd-projection", help="Learn a projection when student and teacher widths differ.",
    rich_help_panel=DISTILL)]
TeacherModels = Annotated[Optional[list[str]], typer.Option(
    "--teacher", help="Teacher model run in the loop (online), NAME=DIR or DIR; repeat for several. "
                      "Instead of --labels; needed by the hidden_mse, attention_mse and minilm_* terms.",
    rich_help_panel=DISTILL)]
MatchLayers = Annotated[str, typer.Option(
    "--match-layers", help="Layer map of hidden_mse/attention_mse: skip, last or teacher layers i,j,k.",
    rich_help_panel=DISTILL)]
RelationHeads = Annotated[Optional[int], typer.Option(
    "--relation-heads", help="Relation heads of the MiniLM terms (default: the student's attention heads).",
    rich_help_panel=DISTILL)]
Epochs = Annotated[Optional[float], typer.Option(
    "--epochs", help="Passes over the training data (finetune default: 3, more on small data to reach 300 updates, "
    "at most 20).", rich_help_panel=TRAIN)]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", help="Optimizer updates (overrides --epochs).",
                                                rich_help_panel=TRAIN)]
TimeBudget = Annotated[Optional[float], typer.Option(
    "--time-budget", help="Stop after this many seconds of training, with a checkpoint (continue with --resume and a "
    "larger budget); the model of the best evaluation so far is published.", rich_help_panel=TRAIN)]
GradAccum = Annotated[int, typer.Option("--grad-accum", help="Micro-batches per optimizer update.",
                                        rich_help_panel=TRAIN)]
Lr = Annotated[Optional[float], typer.Option(
    "--lr", help="Peak learning rate (AdamW); finetune default: 1e-4 for a student (fewer layers than its source, "
    "random init, or with teachers), 5e-5 for a whole model.", rich_help_panel=TRAIN)]
Warmup = Annotated[float, typer.Option("--warmup-ratio", help="Share of updates with linear warm-up.",
                                       rich_help_panel=TRAIN)]
WeightDecay = Annotated[float, typer.Option("--weight-decay", rich_help_panel=TRAIN)]
Seed = Annotated[int, typer.Option("--seed", rich_help_panel=TRAIN)]
MixedPrecision = Annotated[Optional[c.choice("MixedPrecision", MIXED_PRECISION)], typer.Option(
    "--mixed-precision", help="no, bf16 (fast on GPUs and on CPUs with AVX512-BF16 or AMX, emulated and slow on "
    "others), fp16, or auto (bf16 where the device computes it in hardware, else no); default: the Accelerate "
    "configuration (ACCELERATE_MIXED_PRECISION or accelerate config), else no.",
                                             rich_help_panel=TRAIN)]
ReportTo = Annotated[c.choice("ReportTo", ("none", "tensorboard", "wandb")), typer.Option(
    "--report-to", help="Log every loss term, the learning rate, throughput and evaluations to TensorBoard "
                        "(<output>/logs) or Weights & Biases (needs wandb), through Accelerate.",
    rich_help_panel=TRAIN)]
LogEvery = Annotated[Optional[int], typer.Option(
    "--log-every", help="Keep every N-th step in training_record.json's history (default: every step up to "
                        "2,000 updates, else ~2,000 evenly spaced).", rich_help_panel=TRAIN)]
EvalEvery = Annotated[Optional[int], typer.Option("--eval-every", help="Evaluate every N updates (and each epoch).",
                                                  rich_help_panel=TRAIN)]
SaveEvery = Annotated[int, typer.Option("--save-every", help="Checkpoint every N updates (and each epoch).",
                                        rich_help_panel=TRAIN)]
BestMetric = Annotated[Optional[str], typer.Option(
    "--best-metric", help="Metric that picks the saved model (default: MAP for ranking, else accuracy).",
    rich_help_panel=TRAIN)]
KeepCheckpoints = Annotated[bool, typer.Option("--keep-checkpoints", help="Keep checkpoints in the output.",
                                               rich_help_panel=TRAIN)]
FreezeWordEmbeddings = Annotated[bool, typer.Option(
    "--freeze-word-embeddings", help="Keep the input word embeddings fixed (no gradient or optimizer state for the "
                                     "vocabulary × width matrix: faster updates on the CPU).", rich_help_panel=STUDENT)]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue from the latest checkpoint in --output (starts afresh when there is none yet, "
                     "so an interrupted command can simply be run again).", rich_help_panel=TRAIN)]


def floats(text: str | None, option: str) -> list[float] | None:
    from bertdistill.errors import UserError

    items = c.split_list(text)
    if items is None:
        return None
    try:
        return [float(x) for x in items]
    except ValueError:
        raise UserError(f"{text!r} is not a list of numbers", option, "write e.g. 1,1,2") from None


def term_weights(specs: list[str] | None) -> dict[str, float | dict] | None:
    """``NAME=WEIGHT[,key=value…]`` items → {name: weight}, or {name: {"weight": w, key: value, ...}} with options."""
    from bertdistill.errors import UserError

    if not specs:
        return None
    out: dict[str, float | dict] = {}
    for spec in specs:
        head, *rest = spec.split(",")
        name, sep, weight = head.partition("=")
        try:
            value = float(weight) if sep else 1.0
        except ValueError:
            raise UserError(f"--term {spec!r} is not NAME=WEIGHT[,option=value…]", "--term",
                            "write e.g. --term hidden_mse=1 or --term listwise_kd=0.7,temperature=1") from None
        options = {}
        for item in rest:
            key, eq, option = item.partition("=")
            if not eq or not key.strip():
                raise UserError(f"--term {spec!r}: {item!r} is not option=value", "--term",
                                "write e.g. --term listwise_kd=0.7,temperature=1")
            options[key.strip()] = option.strip()
        out[name.strip()] = {"weight": value, **options} if options else value
    return out


def _terms_help() -> str:
    """The --term help from the term registry: each term that uses teachers, with its options."""
    from bertdistill.training.terms import TERMS, option_names

    items = []
    for name, cls in TERMS.items():
        if name in ("hard", "kd", "pkd"):  # set by --alpha and --pkd-beta, their options by the options below
            continue
        notes = ["online teachers"] if cls.online_only else ["query groups"] if cls.needs_groups else []
        if option_names(cls):
            notes.append("options: " + ", ".join(option_names(cls)))
        items.append(name + (f" ({'; '.join(notes)})" if notes else ""))
    weighted = " and ".join(f"{name} (options: {', '.join(option_names(TERMS[name]))})" for name in ("kd", "pkd"))
    return ("Further loss term NAME=WEIGHT[,option=value…], repeatable: " + "; ".join(items)
            + f". {weighted} take their options the same way (e.g. kd=0.5,temperature=4).")


Terms = Annotated[Optional[list[str]], typer.Option("--term", help=_terms_help(), rich_help_panel=DISTILL)]


def student_config(student_from, model, student_layers, layer_map, student_config_path,
                   trust_remote_code: bool = False, head: str = "classes", dropout: float | None = None):
    from bertdistill.config import config_from_dict
    from bertdistill.errors import UserError
    from bertdistill.io import read_json
    from bertdistill.student.config import StudentConfig

    if student_from and model:
        raise UserError("--model and --student-from both given", None,
                        "use --model for plain fine-tuning of a whole model, --student-from for a student")
    from bertdistill.student.config import HEADS

    if head not in HEADS:
        raise UserError(f"unknown head {head!r}", "--head", f"use one of: {', '.join(HEADS)}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout {dropout} is not a probability below 1", "--student-dropout", "give e.g. 0 or 0.1")
    cfg = StudentConfig(source=student_from or model, layers=student_layers, layer_map=layer_map,
                        trust_remote_code=trust_remote_code, head=head, dropout=dropout)
    if student_config_path:
        text = str(student_config_path)
        if text.lstrip().startswith("{"):  # inline JSON
            import json

            try:
                shape = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                problem = exc if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise UserError(f"not valid JSON ({problem})", "--student-config",
                                'write e.g. {"layers": 3, "width": 256}') from None
        else:
            shape = read_json(student_config_path)
        if not isinstance(shape, dict):
            raise UserError("expected a JSON object", str(student_config_path), 'write e.g. {"layers": 3, "width": 256}')
        shape = config_from_dict(StudentConfig, {k: v for k, v in shape.items() if k != "source"},
                                 "--student-config")
        cfg.random_init = True
        cfg.layers = shape.layers or student_layers
        cfg.width, cfg.heads, cfg.intermediate = shape.width, shape.heads, shape.intermediate
    return cfg


def _fields(data_prefix: str) -> dict[str, tuple[str, ...]]:
    """Option → run-config fields (finetune and pretrain-student); see ``common.with_config_file``."""
    fields = c.data_fields(data_prefix)
    fields.update({name: ("eval_data",) for name in ("eval_data", "eval_split", "eval_data_config", "eval_limit")})
    fields.update({
        "labels": ("labels",), "eval_labels": ("eval_labels",), "output": ("output",), "teacher": ("teacher_models",),
        "model": ("student.source",), "student_from": ("student.source",), "student_layers": ("student.layers",),
        "layer_map": ("student.layer_map",), "trust_remote_code": ("student.trust_remote_code",),
        "student_dropout": ("student.dropout",),
        "student_config_path": tuple(f"student.{k}" for k in ("random_init", "layers", "width", "heads",
                                                                "intermediate")),
        "term": ("distill.terms",), "overwrite": ("overwrite",), "resume": ("resume",),
        "eval_fraction": ("eval_fraction",), "dev_fraction": ("dev_fraction",), "no_eval": ("dev_fraction",),
        "strict": ("guards.strict",), "allow_collapsed": ("guards.allow_collapsed",), "baseline": ("baseline",)})
    for name in ("alpha", "temperature", "kd_loss", "teacher_mode", "teacher_weights", "teachers", "pkd",
                 "pkd_beta", "pkd_projection", "match_layers", "relation_heads"):
        fields[name] = (f"distill.{name}",)
    for name in ("epochs", "max_steps", "time_budget", "batch_size", "grad_accum", "lr", "warmup_ratio",
                 "weight_decay", "seed", "mixed_precision", "eval_every", "save_every", "best_metric", "max_length",
                 "keep_checkpoints", "report_to", "log_every", "freeze_word_embeddings"):
        fields[name] = (f"train.{name}",)
    return fields


def command(
    config_file: c.ConfigFile = None,
    data: c.DataPath = None, dataset: c.HubDataset = None, subset: c.HubSubset = None, split: c.HubSplit = None,
    data_config: c.DataConfig = None, columns: c.Columns = None, text_a: c.TextA = None, text_b: c.TextB = None,
    label_column: c.LabelColumn = None, group_column: c.GroupColumn = None, task: c.Task = None,
    label_names: c.LabelNames = None, limit: c.Limit = None,
    eval_data: EvalData = None, eval_split: EvalSplit = None, eval_data_config: EvalDataConfig = None,
    eval_limit: Annotated[Optional[int], typer.Option("--eval-limit", help="Use only the first N eval rows.",
                                                      rich_help_panel=c.DATA_PANEL)] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="Teacher label store of the training data (from bertdistill label): distillation.",
        rich_help_panel=DISTILL)] = None,
    eval_labels: Annotated[Optional[Path], typer.Option(
        "--eval-labels", help="Label store of the eval data (adds distill_loss and teacher agreement).",
        rich_help_panel=DISTILL)] = None,
    output: Output = None,
    model: c.ModelOpt = None,
    student_from: StudentFrom = None, student_layers: StudentLayers = None, layer_map: LayerMap = "first",
    student_config_path: StudentConfigOpt = None, head: Head = "classes", student_dropout: StudentDropout = None,
    teacher_mode: TeacherMode = None, teacher_weights: TeacherWeights = None, teachers: Teachers = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Weight α of the teachers' soft loss; gold labels get 1−α.",
                                         rich_help_panel=DISTILL)] = 0.5,
    temperature: Temperature = 2.0, kd_loss: KdLoss = "kl", pkd: Pkd = "none", pkd_beta: PkdBeta = 10.0,
    pkd_projection: PkdProjection = True, teacher: TeacherModels = None, term: Terms = None,
    match_layers: MatchLayers = "skip", relation_heads: RelationHeads = None,
    epochs: Epochs = None, max_steps: MaxSteps = None, time_budget: TimeBudget = None, batch_size: c.BatchSize = 32,
    grad_accum: GradAccum = 1, lr: Lr = None, warmup_ratio: Warmup = 0.1, weight_decay: WeightDecay = 0.01, seed: Seed = 42,
    mixed_precision: MixedPrecision = None, eval_every: EvalEvery = None, save_every: SaveEvery = 500,
    best_metric: BestMetric = None, max_length: c.MaxLength = 128, keep_checkpoints: KeepCheckpoints = False,
    report_to: ReportTo = "none", log_every: LogEvery = None, freeze_word_embeddings: FreezeWordEmbeddings = False,
    dev_fraction: Annotated[float, typer.Option(
        "--dev-fraction", help="Without --eval-data: share of the training rows held out as a dev set "
                               "(whole queries for ranking; at most 2,000 rows).", rich_help_panel=TRAIN)] = 0.1,
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Hold out no dev split: train on every row, no evaluation.",
                                          rich_help_panel=TRAIN)] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (exit 3, the model saved and marked FAILED) when the kept student collapsed, is "
                         "below the majority baseline or far below the teachers on the dev set (else a warning).",
        rich_help_panel=TRAIN)] = False,
    allow_collapsed: Annotated[bool, typer.Option(
        "--allow-collapsed", help="Accept a run whose every evaluation predicted one class (default: exit 3, the "
                                  "model saved and marked FAILED).", rich_help_panel=TRAIN)] = False,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="A model trained on this task (e.g. the student fine-tuned alone), scored on the same "
                           "dev/eval rows and shown next to the kept student.", rich_help_panel=TRAIN)] = None,
    overwrite: c.Overwrite = False, resume: Resume = False, trust_remote_code: c.TrustRemoteCode = False,
) -> None:
    from bertdistill.training.config import DistillConfig, FinetuneConfig, TrainConfig
    from bertdistill.training.guards import GuardConfig
    from bertdistill.training.finetune import finetune

    spec = c.data_spec(data, dataset, subset, split, data_config, columns, text_a, text_b, label_column,
                       group_column, task, label_names, False, limit)
    eval_spec = c.eval_data_spec(spec, eval_data, eval_split, eval_data_config, eval_limit)
    config = FinetuneConfig(
        train_data=spec, eval_data=eval_spec, labels=str(labels) if labels else None,
        eval_labels=str(eval_labels) if eval_labels else None, teacher_models=teacher or None,
        output=str(output) if output else "",
        student=student_config(student_from, model, student_layers, layer_map, student_config_path,
                               trust_remote_code, head, student_dropout),
        train=TrainConfig(epochs=epochs, max_steps=max_steps, time_budget=time_budget,
                          batch_size=c.check_positive(batch_size, "--batch-size"), grad_accum=grad_accum, lr=lr, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                          seed=seed, mixed_precision=mixed_precision, eval_every=eval_every, save_every=save_every,
                          best_metric=best_metric, max_length=max_length, keep_checkpoints=keep_checkpoints,
                          report_to=report_to, log_every=log_every, freeze_word_embeddings=freeze_word_embeddings),
        distill=DistillConfig(alpha=alpha, temperature=temperature, kd_loss=kd_loss, teacher_mode=teacher_mode,
                              teacher_weights=floats(teacher_weights, "--teacher-weights"),
                              teachers=c.split_list(teachers), pkd=pkd, pkd_beta=pkd_beta,
                              pkd_projection=pkd_projection, terms=term_weights(term), match_layers=match_layers,
                              relation_heads=relation_heads),
        dev_fraction=0.0 if no_eval else dev_fraction,
        guards=GuardConfig(strict=strict, allow_collapsed=allow_collapsed), baseline=baseline,
        overwrite=overwrite, resume=resume)
    config = c.with_config_file(config, config_file, _fields("train_data"))
    c.require(config.output, "--output", "add --output DIR (the model directory to create)")
    c.guard_outputs(config.output, *c.spec_inputs(config.train_data), *c.spec_inputs(config.eval_data), data_config,
                    eval_data_config, config.labels, config.eval_labels, config.student.source, student_config_path,
                    list(config.teacher_models or []), config.baseline)
    finetune(config)
