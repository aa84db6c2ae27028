from conftest import make_tiny_bert


def test_tiny_bert_loads(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = make_tiny_bert(tmp_path / "m")
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    enc = tok(["what is the river"], ["the river is cold"], return_tensors="pt")
    assert model(**enc).logits.shape == (1, 2)
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 1_000_000
