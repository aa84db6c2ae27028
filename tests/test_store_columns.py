"""Label store columns named by teacher, the root as one ``datasets`` Dataset, and version 1 stores
(columns named by teacher index) still read, trained from and resumed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli
from conftest import make_tiny_bert, write_toy_pairs

from bertdistill.errors import UserError
from bertdistill.teachers.layout import partial_dir, shard_checksums
from bertdistill.teachers.store import LabelStore, write_label_store


def store_meta(names: list[str], layers: list[list[int]]) -> dict:
    return {"label_names": ["0", "1"], "data": {"rows": 25}, "max_length": 32,
            "teachers": [{"name": n, "stored_layers": ls, "hidden_size": 4} for n, ls in zip(names, layers)]}


@pytest.fixture()
def outputs():
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(25, 2)).astype(np.float32) for _ in range(2)]
    hidden = [None, rng.normal(size=(25, 2, 4)).astype(np.float16)]
    return logits, hidden


def rename_shard_columns(path: Path, rename: dict[str, str]) -> dict:
    """Rename a shard's columns in place (its checksum file rewritten); returns its checksums."""
    ds = datasets.Dataset.load_from_disk(str(path))
    tmp = {c: f"tmp_{c}" for c in rename}
    ds = ds.rename_columns(tmp).rename_columns({tmp[c]: new for c, new in rename.items()})
    ds.save_to_disk(str(path.with_name("old")))
    del ds
    shutil.rmtree(path)
    path.with_name("old").rename(path)
    files = shard_checksums(path)
    (path / ".checksums.json").write_text(json.dumps(files) + "\n")
    return files


def to_version_1(store: Path) -> Path:
    """Rewrite a store the way bertdistill wrote it before version 2: columns logits_<t>/cls_<t> by teacher
    index, no ``columns`` in meta.json, no root dataset files (shard checksums kept valid)."""
    meta = json.loads((store / "meta.json").read_text())
    rename = {}
    for t, info in enumerate(meta["teachers"]):
        columns = info.pop("columns")
        rename[columns["logits"]] = f"logits_{t}"
        if columns["cls"]:
            rename[columns["cls"]] = f"cls_{t}"
    for shard in meta["shards"]:
        shard["files"] = rename_shard_columns(store / "shards" / shard["name"], rename)
    meta["version"] = 1
    (store / "meta.json").write_text(json.dumps(meta))
    (store / "state.json").unlink()
    (store / "dataset_info.json").unlink()
    return store


def test_new_store_names_columns_by_teacher_and_its_root_loads_with_load_from_disk(tmp_path, outputs):
    logits, hidden = outputs
    path = write_label_store(tmp_path / "s", store_meta(["big", "small"], [[], [1, 2]]), logits, hidden, shard_rows=10)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["version"] == 2 and len(meta["shards"]) == 3
    assert [t["columns"] for t in meta["teachers"]] == [{"logits": "logits_big", "cls": None},
                                                        {"logits": "logits_small", "cls": "cls_small"}]
    store = LabelStore.open(path)
    assert store.dataset.column_names == ["row", "logits_big", "logits_small", "cls_small"]
    assert store.logits_column("small") == "logits_small" and store.cls_column(1) == "cls_small"
    assert store.cls_column("big") is None

    root = datasets.load_from_disk(str(path))  # no data copied: the root lists the shards' Arrow files
    assert isinstance(root, datasets.Dataset) and len(root) == 25
    assert root.column_names == ["row", "logits_big", "logits_small", "cls_small"]
    assert root["row"][:] == list(range(25))
    np.testing.assert_array_equal(np.asarray(root["logits_big"][:], dtype=np.float32), logits[0])
    np.testing.assert_array_equal(np.asarray(root["logits_small"][:], dtype=np.float32), store.logits("small"))
    np.testing.assert_array_equal(np.asarray(root["cls_small"][:], dtype=np.float16), hidden[1])
    np.testing.assert_array_equal(store.hidden("small", range(25), [2]), hidden[1][:, 1:2].astype(np.float32))
    assert sum(p.stat().st_size for p in path.glob("*.arrow")) == 0  # the root holds no Arrow file of its own

    whole = store.to_dataset()
    assert whole.column_names == root.column_names and whole.features == root.features
    assert whole[:] == root[:]


def test_edited_root_state_is_refused(tmp_path, outputs):
    logits, hidden = outputs
    path = write_label_store(tmp_path / "s", store_meta(["a", "b"], [[], [1, 2]]), logits, hidden, shard_rows=10)
    state = json.loads((path / "state.json").read_text())
    state["_data_files"] = state["_data_files"][:2]
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="does not list the shards' Arrow files"):
        LabelStore.open(path)
    (path / "state.json").unlink()
    with pytest.raises(UserError, match="missing or damaged"):
        LabelStore.open(path)


def test_meta_naming_a_column_the_shards_lack_is_refused(tmp_path, outputs):
    logits, hidden = outputs
    path = write_label_store(tmp_path / "s", store_meta(["a", "b"], [[], [1, 2]]), logits, hidden, shard_rows=10)
    meta = json.loads((path / "meta.json").read_text())
    meta["teachers"][1]["columns"]["logits"] = "logits_c"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no column 'logits_c'"):
        LabelStore.open(path)


def test_version_1_store_reads_the_same_through_the_accessors(tmp_path, outputs):
    logits, hidden = outputs
    # Teacher names that are the other one's index: old and new column names overlap.
    path = write_label_store(tmp_path / "s", store_meta(["1", "0"], [[], [1, 2]]), logits, hidden, shard_rows=10)
    new = LabelStore.open(path)
    whole_new = new.to_dataset()[:]
    old = LabelStore.open(to_version_1(path))
    assert old.dataset.column_names == ["row", "logits_0", "logits_1", "cls_1"]
    assert old.logits_column("1") == "logits_0" and old.cls_column("0") == "cls_1" and old.cls_column("1") is None
    np.testing.assert_array_equal(old.logits("1"), logits[0])
    np.testing.assert_array_equal(old.logits("0"), logits[1])
    np.testing.assert_array_equal(old.hidden("0", [3, 7], [1, 2]), hidden[1][[3, 7]].astype(np.float32))
    whole = old.to_dataset()  # teacher-named columns whatever the version
    assert whole.column_names == ["row", "logits_1", "logits_0", "cls_0"]
    assert whole[:] == whole_new
    with pytest.raises(FileNotFoundError):  # a version 1 root is no Dataset: to_dataset() is the way
        datasets.load_from_disk(str(path))


def test_finetune_trains_from_a_version_1_store(tmp_path):
    teacher = make_tiny_bert(tmp_path / "teacher", layers=4, seed=2)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=24)
    store = tmp_path / "store"
    label = ["label", "--teacher", f"1={teacher}", "--data", data, "--hidden-layers", "all", "--max-length", "32",
             "--shard-rows", "10", "--quiet", "--output", store]
    assert run_cli(*label).code == 0
    to_version_1(store)
    result = run_cli("finetune", "--data", data, "--labels", store, "--student-from", teacher,
                     "--student-layers", "2", "--pkd", "skip", "--pkd-beta", "1", "--max-steps", "1",
                     "--batch-size", "8", "--max-length", "32", "--no-eval", "--output", tmp_path / "student")
    assert result.code == 0, result.err
    assert (tmp_path / "student" / "model.safetensors").is_file()



def test_resume_relabels_a_shard_an_older_version_left_with_index_named_columns(tmp_path, monkeypatch):
    from bertdistill.teachers import writer

    teacher = make_tiny_bert(tmp_path / "teacher", layers=2, seed=2)
    data = write_toy_pairs(tmp_path / "pairs.tsv", n=24)
    store = tmp_path / "store"
    label = ["label", "--teacher", f"t={teacher}", "--data", data, "--hidden-layers", "all", "--max-length", "32",
             "--shard-rows", "10", "--quiet", "--output", store]
    assert run_cli(*label, "--output", tmp_path / "clean").code == 0
    reference = LabelStore.open(tmp_path / "clean").to_dataset()[:]

    real = writer.StoreWriter.write_shard
    monkeypatch.setattr(writer.StoreWriter, "write_shard",
                        lambda self, span, *a: (_ for _ in ()).throw(KeyboardInterrupt) if span.index == 2
                        else real(self, span, *a))
    assert run_cli(*label).code != 0
    monkeypatch.setattr(writer.StoreWriter, "write_shard", real)
    shards = partial_dir(store) / "shards"
    assert sorted(p.name for p in shards.iterdir()) == ["shard-00000", "shard-00001"]
    rename_shard_columns(shards / "shard-00000", {"logits_t": "logits_0", "cls_t": "cls_0"})  # as before version 2
    kept = (shards / "shard-00001" / "state.json").stat().st_mtime_ns

    assert run_cli(*label).code == 0
    assert (store / "shards" / "shard-00001" / "state.json").stat().st_mtime_ns == kept  # adopted
    resumed = LabelStore.open(store)
    assert resumed.dataset.column_names == ["row", "logits_t", "cls_t"]
    assert resumed.to_dataset()[:] == reference
