"""preprocess.quotas quotas and preprocess.config loading."""
from collections import Counter
from pathlib import Path

import pytest

from preprocess.config import PreprocessConfig, load_config
from preprocess.quotas import Quota, apply_quotas, parse_quota, parse_quotas

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _items():
    return ([{"id": f"a{i}", "category": "addition"} for i in range(100)]
            + [{"id": f"m{i}", "category": "mass"} for i in range(3)]
            + [{"id": f"e{i}", "category": "english"} for i in range(10)])


def test_parse_quota_forms():
    assert parse_quota("x", 5) == Quota(count=5)
    assert parse_quota("x", 0.25) == Quota(ratio=0.25)
    assert parse_quota("x", {"ratio": 1, "upsample": 10}) == Quota(ratio=1.0, upsample=10)
    for bad, msg in ((True, "expected"), (-1, "count"), (1.5, "ratio"), ({"count": 1, "ratio": 0.5}, "not both"),
                     ({"upsample": 0}, "upsample"), ({"cnt": 3}, "unknown keys"), ("all", "expected")):
        with pytest.raises(ValueError, match=msg):
            parse_quota("mass", bad)
    with pytest.raises(ValueError, match="mapping"):
        parse_quotas([1, 2])


def test_counts_ratios_upsampling_and_default():
    quotas = parse_quotas({"addition": 30, "mass": {"ratio": 1.0, "upsample": 10}, "default": 0.5})
    drawn = apply_quotas(_items(), quotas, seed=1)
    counts = Counter(it["category"] for it in drawn)
    assert counts == {"addition": 30, "mass": 30, "english": 5}
    assert Counter(it["id"] for it in drawn if it["category"] == "mass") == {"m0": 10, "m1": 10, "m2": 10}
    assert [it["id"] for it in drawn] == sorted((it["id"] for it in drawn), key=[x["id"] for x in _items()].index)
    assert drawn == apply_quotas(_items(), quotas, seed=1)
    assert drawn != apply_quotas(_items(), quotas, seed=2)
    assert len(apply_quotas(_items(), parse_quotas({"addition": 10**6}), 0)) == 113  # capped, rest whole
    assert apply_quotas(_items(), {}, 0) == _items()


def test_example_config_loads():
    cfg = load_config(REPO / "configs" / "preprocess" / "quotas_example.yaml")
    assert cfg.rounding == {"division": 2, "square_root": 2}
    assert cfg.quotas["mass"] == Quota(ratio=1.0, upsample=10) and cfg.quotas["addition"] == Quota(count=5000)
    assert cfg.logic_style == "thinking" and cfg.near_dup_threshold == 0.85
    assert cfg.contamination[0].endswith("shared/data/ascend2024_math/sample_dev.jsonl")
    assert cfg.with_overrides(seed=7, logic_style=None).seed == 7


@pytest.mark.parametrize("text, msg", [
    ("rounding: {division: -1}", "rounding for 'division'"),
    ("rounding: {logic: 2}", "rounding for 'logic': its answers are not decimal numbers"),
    ("quotas: {adition: 5}", "unknown category 'adition'"),
    ("near_duplicates: {threshold: 1.5}", "threshold"),
    ("logic_style: fancy", "logic_style"),
    ("colour: red", "unknown keys"),
    ("teacher: {model: m}", "teacher.base_url"),
    ("teacher: {base_url: 'http://127.0.0.1:8000/v1', model: m, stream: 'yes'}", "teacher.stream"),
    ("teacher: {base_url: 'http://127.0.0.1:8000/v1', model: m, mode: guess}", "teacher.mode"),
    ("[1, 2]", "mapping"),
    ("a: [", "not valid YAML"),
])
def test_bad_config_names_file_and_key(tmp_path, text, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=msg) as exc:
        load_config(path)
    assert str(path) in str(exc.value)


def test_defaults_and_off_switch(tmp_path):
    assert load_config(None) == PreprocessConfig()
    path = tmp_path / "c.yaml"
    path.write_text("near_duplicates: false\n", encoding="utf-8")
    assert load_config(path).near_dup_threshold is None
