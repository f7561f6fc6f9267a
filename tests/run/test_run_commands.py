"""The command lines the runner's stages build: one template, tokenizer file and eval backend for
training and evaluation, --eval_data kept out of training."""
import pytest

from research.rundir.layout import GENERATED_CORPUS_PREPROCESS, ROOT, RunLayout
from research.run.settings import resolve
from research.run.stages.common import exit_text
from research.run.stages.data import mindrecord_command, preprocess_command
from research.run.stages.evaluate import before_after, eval_command, math_plan

pytestmark = pytest.mark.unit

LLAMA3_1P = ROOT / "configs" / "llama3_8b" / "finetune_lora_910b_1p.yaml"


def _value(cmd, option):
    return cmd[cmd.index(option) + 1]


def test_template_and_vocab_file_reach_mindrecord_and_evaluation(tmp_path):
    ckpt, vocab = tmp_path / "llama3.ckpt", tmp_path / "tokenizer.model"
    ckpt.write_bytes(b"x")
    vocab.write_bytes(b"x")
    s = resolve({"config": str(LLAMA3_1P), "load_checkpoint": str(ckpt), "vocab_file": str(vocab),
                 "template": "llama3_chat"})
    layout = RunLayout(tmp_path / "run")
    mr = [str(c) for c in mindrecord_command(s, layout)]
    assert (_value(mr, "--template"), _value(mr, "--model_file"), _value(mr, "--seq_length")) == \
        ("llama3_chat", str(vocab), str(s.seq_length))
    # the eval's generation budget is checked and over-budget samples dropped, never truncated
    assert _value(mr, "--max_new_tokens") == str(s.max_new_tokens) and "--drop_overlong" in mr
    smoke = [str(c) for c in mindrecord_command(resolve({"smoke": True}), layout)]
    assert _value(smoke, "--max_new_tokens") == "24" and "--drop_overlong" not in smoke
    # packed records carry the dense path's additive mask: the CPU YAMLs, never a flash-attention one
    assert "--packing" in smoke and "--packing" not in mr and not s.packing
    unpacked = mindrecord_command(resolve({"smoke": True, "no_packing": True}), layout)
    assert "--packing" not in [str(c) for c in unpacked]
    base_step, lora_step = math_plan(s, layout)
    base_cmd = eval_command(s, layout, base_step, ckpt)
    # the base is shown the PoT worked examples without a template (pot_cot, the default); the run's
    # template reaches the trained model's eval
    assert (_value(base_cmd, "--template"), _value(base_cmd, "--model_file"), _value(base_cmd, "--backend")) == \
        ("none", str(vocab), "mindformers")  # the YAML targets Ascend
    assert _value(eval_command(s, layout, lora_step, ckpt), "--template") == "llama3_chat"
    assert "--lora_checkpoint" not in base_cmd and "--baseline" not in base_cmd
    lora_cmd = eval_command(s, layout, lora_step, ckpt, backend="transformers", template="vicuna_v1.1")
    assert (_value(lora_cmd, "--backend"), _value(lora_cmd, "--template")) == ("transformers", "vicuna_v1.1")
    assert _value(lora_cmd, "--lora_checkpoint") == str(layout.lora)
    assert _value(lora_cmd, "--baseline") == str(layout.eval_dir("math", "base") / "metrics.json")
    assert _value(lora_cmd, "--output_dir") == str(layout.root / "eval" / "math_lora")


def test_eval_data_is_evaluated_and_kept_out_of_training(tmp_path):
    items = tmp_path / "test.jsonl"
    items.write_text('{"problem": "1+1", "solution": "2"}\n')
    s = resolve({"eval_data": str(items)})
    layout = RunLayout(tmp_path / "run")
    pre = [str(c) for c in preprocess_command(s, layout, ["a.jsonl"])]
    assert _value(pre, "--contamination") == str(items) and _value(pre, "--eval_size") == "0"
    assert all(step.items == str(items) for step in math_plan(s, layout))
    plain = [str(c) for c in preprocess_command(resolve({}), layout, ["a.jsonl"])]
    assert "--contamination" not in plain and _value(plain, "--eval_size") == "100"
    # the generated corpus is drawn with the main job's quotas; real --data is taken whole
    assert _value(plain, "--config") == _value(pre, "--config") == str(GENERATED_CORPUS_PREPROCESS)
    real = [str(c) for c in preprocess_command(resolve({"data": [str(items)]}), layout, [str(items)])]
    assert "--config" not in real


def test_base_capability_steps_take_no_template(tmp_path):
    s, layout = resolve({}), RunLayout(tmp_path / "run")
    base, lora = before_after("base_dev", "eval.base", "--squad", "dev.json", template=False)
    assert "--template" not in eval_command(s, layout, lora, tmp_path / "b.ckpt")
    assert _value(eval_command(s, layout, base, tmp_path / "b.ckpt"), "--squad") == "dev.json"


def test_a_killed_stage_names_the_likely_cause():
    assert exit_text(1) == "exit 1"
    assert "out-of-memory killer" in exit_text(-9) and "dmesg" in exit_text(-9)


def test_measured_budget_lands_in_the_preprocess_report_once(tmp_path):
    """data/report.md gets the MindRecord budget table (target tokens per category, share on the
    fallback); a second call replaces it instead of appending another copy."""
    import json

    from preprocess.budget import summarize
    from research.run.stages.data import BUDGET_HEADING, note_budget

    lay = RunLayout(tmp_path / "run")
    lay.data_dir.mkdir(parents=True)
    (lay.data_dir / "report.md").write_text("# Preprocessing report\n\nrows\n", encoding="utf-8")
    table = summarize([("addition", 69, 137), ("multiplication", 69, 367), ("multiplication", 69, 380)], 256, 192,
                      fallback=["multiplication", "multiplication"])
    lay.mindrecord_report.parent.mkdir(parents=True, exist_ok=True)
    lay.mindrecord_report.write_text(json.dumps({"budget": table, "seq_length": 256, "max_new_tokens": 192}),
                                     encoding="utf-8")
    note_budget(lay)
    note_budget(lay)
    text = (lay.data_dir / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Preprocessing report\n\nrows\n\n") and text.count(BUDGET_HEADING) == 1
    assert "| addition | 1 | 69 | 69 | 137 | 137 | 137 | 0 | 0 | 0 (0%) |" in text
    assert "| multiplication | 2 | 69 | 69 | 367 | 380 | 380 | 2 | 2 | 2 (100%) |" in text


def test_eval_sh_never_writes_another_item_set_over_the_runs_results(tmp_path):
    from research.run.__main__ import build_parser, eval_steps
    from research.run.stages.common import Run

    lay = RunLayout(tmp_path / "run")
    lay.eval_items.parent.mkdir(parents=True)
    lay.eval_items.write_text("{}\n")
    other = tmp_path / "gsm8k_test.jsonl"
    other.write_text("{}\n")
    run = Run(lay, None, resolve({}))

    def dirs(*options):
        args = build_parser().parse_args(["eval", "--run_dir", str(lay.root), *options])
        return sorted({lay.eval_dir(step.name, step.model).name for step in eval_steps(args, run)})

    assert dirs() == ["math_base", "math_lora"]  # the run's own results, as report.md shows them
    assert dirs("--limit", "3") == ["math_first3_base", "math_first3_lora"]
    assert dirs("--math", str(other)) == ["math_gsm8k_test_base", "math_gsm8k_test_lora"]
    assert dirs("--logic", str(other), "--limit", "2") == [
        "logic_gsm8k_test_first2_base", "logic_gsm8k_test_first2_lora", "math_first2_base", "math_first2_lora"]
