"""preprocess.budget and research.llama3.records.mindrecord's budget report: per-category prompt/target token
lengths under the YAML's tokenizer, warnings, and dropping instead of truncating."""
import json
from collections import Counter
from pathlib import Path

import pytest

from preprocess.budget import budget_warnings, over_budget, render_table, split_lengths, summarize
from research.llama3.records.encode import encode_conversation
from research.llama3.records.mindrecord import convert
from preprocess.templates import get_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2 = ROOT / "configs" / "smollm2_135m" / "finetune_lora_cpu.yaml"


def test_summarize_fixed_input():
    samples = [("addition", 60, 10), ("addition", 62, 20), ("addition", 64, 30), ("addition", 66, 200),
               ("division", 70, 150), ("division", 70, 190)]
    table = summarize(samples, seq_length=256, max_new_tokens=192, fallback=["division"])
    assert list(table) == ["addition", "division", "all"]
    assert table["addition"] == {"samples": 4, "prompt_median": 62, "prompt_p90": 66, "prompt_max": 66,
                                 "target_median": 20, "target_p90": 200, "target_max": 200,
                                 "over_seq_length": 1, "over_max_new_tokens": 1, "fallback": 0}
    assert table["division"]["fallback"] == table["all"]["fallback"] == 1
    # 70 + 190 = 260 > 257 tokens of a record; 190 <= 192 fits the generation budget.
    assert table["division"]["over_seq_length"] == 1 and table["division"]["over_max_new_tokens"] == 0
    assert table["all"]["samples"] == 6 and table["all"]["target_median"] == 30
    assert table["all"]["over_seq_length"] == 2 and table["all"]["over_max_new_tokens"] == 1
    assert summarize(samples, 256, None)["all"]["over_max_new_tokens"] == 0
    md = render_table(table, 256, 192)
    assert "| addition | 4 | 62 | 66 | 20 | 200 | 200 | 1 | 1 | 0 (0%) |" in md
    assert "| division | 2 | 70 | 70 | 150 | 190 | 190 | 1 | 0 | 1 (50%) |" in md
    assert budget_warnings(table, dropped=True) == [
        "warning: addition: 1 of 4 samples over seq_length, 1 with a target over max_new_tokens; dropped",
        "warning: division: 1 of 2 samples over seq_length, 0 with a target over max_new_tokens; dropped"]


def test_over_budget_reasons():
    assert over_budget(60, 197, 256, 192) == "target 197 tokens > max_new_tokens=192"
    assert over_budget(60, 196, 256, None) is None  # 256 tokens + BOS fits seq_length + 1
    assert over_budget(62, 196, 256, None) == "258 tokens > seq_length+1=257"
    assert split_lengths([-100, -100, -100, 5, 6, 2]) == (3, 3)


@pytest.fixture(scope="module")
def tokenizer():
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    return tokenizer_from_config(str(SMOLLM2))


def _conv(i, category, question, answer):
    return {"id": str(i), "category": category,
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


def test_convert_reports_budget_and_drops_instead_of_truncating(tokenizer, tmp_path):
    tpl = get_template("vicuna_v1.1")
    short = _conv(0, "addition", "计算 1.50 + 2.25 等于多少？", "0+5=5\n5+2=7\n1+2=3\n1.50+2.25=3.75")
    long_answer = "\n".join(f"{k}+{k}={2 * k}" for k in range(100, 160))
    long = _conv(1, "multiplication", "计算 1.50 * 2.25 等于多少？", long_answer)
    prompt_n = {}
    for c in (short, long):
        turn = (c["conversations"][0]["value"], c["conversations"][1]["value"])
        _, labels = encode_conversation(tokenizer.encode, tpl, [turn], tokenizer.bos_id, tokenizer.eos_id)
        prompt_n[c["category"]] = split_lengths(labels)
    assert prompt_n["multiplication"][1] > 192  # the long target does not fit the generation budget

    kept = convert([short, long], tokenizer, tpl, 256, str(tmp_path / "a.mindrecord"), max_new_tokens=192)
    assert [e["id"] for e in kept["truncated"]] == ["1"] and kept["dropped"] == []
    dropped = convert([short, long], tokenizer, tpl, 256, str(tmp_path / "b.mindrecord"), max_new_tokens=192,
                      drop_overlong=True)
    assert dropped["truncated"] == [] and dropped["samples"] == 1 and dropped["records"] == 1
    assert [e["id"] for e in dropped["dropped"]] == ["1"]
    assert dropped["dropped"][0]["reason"].startswith("over budget: ")
    for report in (kept, dropped):  # the budget is measured before any cut or drop
        b = report["budget"]
        assert (b["addition"]["prompt_max"], b["addition"]["target_max"]) == prompt_n["addition"]
        assert (b["multiplication"]["prompt_max"], b["multiplication"]["target_max"]) == prompt_n["multiplication"]
        assert b["multiplication"]["over_max_new_tokens"] == 1 and b["addition"]["over_max_new_tokens"] == 0
        assert b["all"]["samples"] == 2
    on_disk = json.loads((tmp_path / "b.mindrecord.report.json").read_text(encoding="utf-8"))
    assert on_disk["budget"] == dropped["budget"] and on_disk["drop_overlong"] is True


def test_over_budget_conversation_trains_on_its_fallback(tokenizer, tmp_path):
    """A pot_cot record too long for the budget is trained on its fallback_conversations (listed as
    shortened); one whose fallback is too long as well is dropped; a malformed fallback is skipped."""
    tpl = get_template("vicuna_v1.1")
    question = "计算 1.50 * 2.25 等于多少？"
    long_answer = "算式：1.50 * 2.25\n" + "\n".join(f"{k}+{k}={2 * k}" for k in range(100, 160))
    fits = _conv(0, "multiplication", question, long_answer)
    fits["fallback_conversations"] = [{"from": "human", "value": question}, {"from": "gpt", "value": "算式：1.50 * 2.25"}]
    too_long = _conv(1, "multiplication", question, long_answer)
    too_long["fallback_conversations"] = [{"from": "human", "value": question}, {"from": "gpt", "value": long_answer}]
    broken = _conv(2, "multiplication", question, long_answer)
    broken["fallback_conversations"] = [{"from": "robot", "value": "x"}]
    report = convert([fits, too_long, broken], tokenizer, tpl, 256, str(tmp_path / "f.mindrecord"),
                     max_new_tokens=192, drop_overlong=True)
    assert [e["id"] for e in report["shortened"]] == ["0"] and report["samples"] == report["records"] == 1
    assert report["shortened"][0]["category"] == "multiplication" and report["budget"]["multiplication"]["fallback"] == 1
    assert "trained on its fallback_conversations" in report["shortened"][0]["reason"]
    assert [e["id"] for e in report["dropped"]] == ["1"]
    assert [e["id"] for e in report["skipped"]] == ["2"]
    assert report["skipped"][0]["reason"] == \
        "conversations[2].fallback_conversations.conversations[0].from: expected 'human' or 'gpt'"
    # without drop_overlong the fallback replaces truncation; a sample without one is still truncated
    kept = convert([fits, too_long], tokenizer, tpl, 256, str(tmp_path / "g.mindrecord"), max_new_tokens=192)
    assert [e["id"] for e in kept["shortened"]] == ["0"] and [e["id"] for e in kept["truncated"]] == ["1"]
    assert kept["dropped"] == [] and kept["samples"] == 2
    # the written record is the fallback: prompt + "算式：1.50 * 2.25" + turn end
    _, labels = encode_conversation(tokenizer.encode, tpl, [(question, "算式：1.50 * 2.25")], tokenizer.bos_id,
                                    tokenizer.eos_id)
    assert report["tokens"] == len(labels)


def test_run_report_shows_the_budget_table(tmp_path):
    from eval.run_report import build_sections

    table = summarize([("addition", 69, 100), ("multiplication", 69, 341)], 256, 192)
    (tmp_path / "train.mindrecord.report.json").write_text(json.dumps({
        "records": 1, "truncated": [], "dropped": [{"where": "c[1]", "id": "1", "reason": "over budget"}],
        "skipped": [], "pad_share": 0.3, "seq_length": 256, "max_new_tokens": 192, "budget": table}))
    section = build_sections(tmp_path, None)["Token budget"]
    assert section.startswith("seq_length 256, max_new_tokens 192;")
    assert "| multiplication | 1 | 69 | 69 | 341 | 341 | 341 | 1 | 1 |" in section


def test_default_corpus_keeps_every_sample_under_drop_overlong(tokenizer, tmp_path):
    """The default job's data (3,000 generated items, seed 0, the default pot_cot targets) under the
    SmolLM2 YAML's seq_length 256 and the eval's 192 new tokens, with --drop_overlong (what finetune.sh
    passes): no multiplication is dropped (issue 24: all of them were under the old cot default); each
    over-budget sample trains on its expression-only fallback, nothing is truncated or dropped."""
    from preprocess.synthesize import generate_corpus
    from research.llama3.records.mindrecord import load_conversations
    from preprocess.pipeline import run

    data = tmp_path / "generated.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in generate_corpus(3000, 0)),
                    encoding="utf-8")
    run([data], tmp_path / "data", eval_size=100, seed=0, progress=False)
    report = convert(load_conversations([str(tmp_path / "data" / "conversations.json")]), tokenizer,
                     get_template("vicuna_v1.1"), 256, str(tmp_path / "train.mindrecord"), max_new_tokens=192,
                     drop_overlong=True)
    budget = report["budget"]
    over = {c: (r["over_seq_length"], r["over_max_new_tokens"]) for c, r in budget.items()
            if c != "all" and (r["over_seq_length"] or r["over_max_new_tokens"])}
    assert over["multiplication"] == (budget["multiplication"]["samples"],) * 2  # the whole target never fits
    conv = json.loads((tmp_path / "data" / "conversations.json").read_text(encoding="utf-8"))
    category = {c["id"]: c["category"] for c in conv}
    shortened = Counter(category[e["id"]] for e in report["shortened"])
    assert report["dropped"] == [] and report["truncated"] == []
    assert shortened["multiplication"] == budget["multiplication"]["samples"] == 471
    assert set(shortened) == set(over)
    assert report["samples"] == len(conv)