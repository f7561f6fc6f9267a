"""preprocess.bagging: seeded subsets of the training conversations, one per adapter."""
import json

import pytest

from preprocess.cli import run_main
from preprocess.bagging import bag_indices, main, write_bags

pytestmark = pytest.mark.unit


def test_bags_are_seeded_subsets_of_the_configured_fraction():
    ids = [f"c{i}" for i in range(50)]
    bags = bag_indices(ids, 5, fraction=0.8, seed=0)
    assert [len(b) for b in bags] == [40] * 5
    assert all(b == sorted(set(b)) and set(b) <= set(range(50)) for b in bags)
    assert len({tuple(b) for b in bags}) == 5  # each adapter sees different data
    assert bag_indices(ids, 5, 0.8, 0) == bags and bag_indices(ids, 5, 0.8, 1) != bags
    assert bag_indices(ids, 2, 0.8, 1)[0] != bags[1]  # seeds do not shift bags onto each other
    assert [len(b) for b in bag_indices(ids, 2, fraction=0.3)] == [15, 15]
    assert bag_indices(ids, 1, fraction=1.0) == [list(range(50))]
    assert bag_indices(["a"], 3, fraction=0.1) == [[0], [0], [0]]  # at least one item


def test_upsampled_copies_stay_together():
    ids = ["a", "a#2", "a#3", "b", "c", "c#2", "d", "e"]
    for bag in bag_indices(ids, 20, fraction=0.6, seed=3):
        chosen = {ids[i].split("#")[0] for i in bag}
        assert len(chosen) == 3  # round(0.6 x 5 items)
        assert bag == [i for i, x in enumerate(ids) if x.split("#")[0] in chosen]


def test_errors():
    with pytest.raises(ValueError, match="n must be >= 1"):
        bag_indices(["a"], 0)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        bag_indices(["a"], 2, fraction=1.5)
    with pytest.raises(ValueError, match="no conversations"):
        bag_indices([], 2)


def test_cli_writes_bag_directories_and_manifest(tmp_path, capsys):
    convs = [{"id": f"x-{i}.q1", "conversations": [{"from": "human", "value": f"q{i}"},
                                                   {"from": "gpt", "value": "答案：A"}]} for i in range(10)]
    src = tmp_path / "conversations.json"
    src.write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    assert main(["--input", str(src), "--n", "3", "--seed", "7", "--output_dir", str(tmp_path / "bags")]) == 0
    manifest = json.loads((tmp_path / "bags" / "bags.json").read_text(encoding="utf-8"))
    assert manifest["bags"] == ["bag_00", "bag_01", "bag_02"] and manifest["fraction"] == 0.8
    assert capsys.readouterr().out.split() == [str(tmp_path / "bags" / b) for b in manifest["bags"]]
    expected = bag_indices([c["id"] for c in convs], 3, 0.8, 7)
    for k, name in enumerate(manifest["bags"]):
        got = json.loads((tmp_path / "bags" / name / "conversations.json").read_text(encoding="utf-8"))
        meta = json.loads((tmp_path / "bags" / name / "bag.json").read_text(encoding="utf-8"))
        assert got == [convs[i] for i in expected[k]] and meta["ids"] == [c["id"] for c in got]
        assert (meta["bag"], meta["seed"], meta["conversations"], meta["of"]) == (k, 7, 8, 10)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"conversations": []}]', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: entry 1 has no field 'id'"):
        write_bags(bad, 2, tmp_path / "x")
    assert run_main(main, ["--input", str(bad), "--n", "2", "--output_dir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
