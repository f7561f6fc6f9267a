"""The data chain is a function of its seed: the generator, ``python -m preprocess`` and MindRecord run
twice with the same seed write byte-identical files (the property benchmarks/behaviour_check.sh relies
on to compare two commits; docs/architecture.md, "Behaviour check")."""
from pathlib import Path

import pytest

from preprocess.__main__ import main as preprocess_main
from preprocess.synthesize import main as synthesize_main
from research.llama3.records.mindrecord import main as mindrecord_main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def chain(corpus: Path, out: Path) -> list[bytes]:
    assert preprocess_main(["--input", str(corpus), "--output_dir", str(out / "data"), "--eval_size", "20",
                            "--seed", "3", "--target_style", "pot_cot", "--cot_style", "steps",
                            "--config", str(ROOT / "configs" / "preprocess" / "generated_corpus.yaml")]) == 0
    assert mindrecord_main(["--dataset_type", "qa", "--input_glob", str(out / "data" / "conversations.json"),
                            "--config", str(ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"),
                            "--seq_length", "128", "--output_file", str(out / "train.mindrecord")]) == 0
    names = ["data/items.jsonl", "data/eval.jsonl", "data/conversations.json", "train.mindrecord"]
    return [(out / name).read_bytes() for name in names]


def test_same_seed_gives_identical_bytes(tmp_path):
    corpus = tmp_path / "generated.jsonl"
    assert synthesize_main(["--n", "150", "--seed", "3", "--output", str(corpus)]) == 0
    first, second = chain(corpus, tmp_path / "a"), chain(corpus, tmp_path / "b")
    assert all(first) and first == second
