"""Student construction (layer copy, random shape), per-teacher heads: exact folding and gradients."""

import torch

from conftest import make_tiny_bert


def test_layer_copy_takes_chosen_layers_embeddings_and_pooler(tmp_path):
    from transformers import AutoModel

    from bertdistill.student.build import build_classifier
    from bertdistill.training.config import StudentConfig

    src = make_tiny_bert(tmp_path / "src", layers=4, classifier=False, seed=3)
    model, tok, info = build_classifier(StudentConfig(source=str(src), layers=2, layer_map="2,4"), ["0", "1"])
    base = AutoModel.from_pretrained(src)
    assert model.config.num_hidden_layers == 2 and info["layers_copied"] == [2, 4]
    s, b = model.bert.state_dict(), base.state_dict()
    assert torch.equal(s["embeddings.word_embeddings.weight"], b["embeddings.word_embeddings.weight"])
    assert torch.equal(s["pooler.dense.weight"], b["pooler.dense.weight"])
    assert torch.equal(s["encoder.layer.0.attention.self.query.weight"], b["encoder.layer.1.attention.self.query.weight"])
    assert torch.equal(s["encoder.layer.1.output.dense.weight"], b["encoder.layer.3.output.dense.weight"])


def test_random_student_of_given_shape(tmp_path):
    from bertdistill.student.build import build_classifier
    from bertdistill.training.config import StudentConfig

    src = make_tiny_bert(tmp_path / "src", layers=4, hidden=32)
    model, _, info = build_classifier(StudentConfig(source=str(src), layers=1, random_init=True, width=16, heads=2),
                                      ["a", "b", "c"])
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.num_labels) == (1, 16, 3)
    assert info["random_init"]


def test_heads_fold_exactly_and_all_get_gradients(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertdistill.student.model import StudentModel, load_saved_heads, save_student
    from bertdistill.training.objective import build_objective
    from bertdistill.training.config import DistillConfig
    from bertdistill.training.terms import TeacherInfo

    src = make_tiny_bert(tmp_path / "src", layers=2)
    classifier = AutoModelForSequenceClassification.from_pretrained(src)
    model = StudentModel(classifier, ["t1", "t2", "t3"])
    model.reinit_heads(seed=1)
    tok = AutoTokenizer.from_pretrained(src)
    enc = tok(["what is the river", "who is the cat"], ["the river is cold", "the dog is old"],
              padding=True, return_tensors="pt")

    model.train()
    features = model(**enc)
    assert features.logits.shape == (3, 2, 2)
    teachers = [TeacherInfo(name, 2, 32) for name in ("t1", "t2", "t3")]
    objective, _ = build_objective(DistillConfig(alpha=0.5, temperature=2.0), teachers, model.config, "heads")
    assert objective.weights == {"hard": 0.5, "kd": 0.5}  # only the active terms
    teacher_logits = torch.randn(3, 2, 2)
    from bertdistill.student.features import Features

    teacher_features = {t.name: Features(logits=teacher_logits[k]) for k, t in enumerate(teachers)}
    total, terms = objective(features, teacher_features, {"label": torch.tensor([1, 0])})
    assert set(terms) == {"hard", "kd"}
    total.backward()
    for head in model.heads():
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        mean_logits = model(**enc).logits.mean(0)
    save_student(model, tok, tmp_path / "out", ["0", "1"])
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        folded = reloaded(**enc).logits
    assert torch.allclose(folded, mean_logits, atol=1e-5)
    names, state = load_saved_heads(tmp_path / "out")
    assert names == ["t1", "t2", "t3"] and state["head_2.weight"].shape == (2, 32)
