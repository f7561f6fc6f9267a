"""The runner's training-target options (--target_style, --cot_style, --eval_limit) and the cache of
base-model evaluations (research.run.eval_cache)."""
import json

import pytest

from research.run.__main__ import main as run_main
from research.run.eval_cache import cache_key, reuse_or_run
from research.rundir.layout import RunLayout
from research.run.settings import RunSettings, SettingsError, resolve
from research.run.stages.data import preprocess_command
from research.run.stages.evaluate import POT_FEWSHOT, eval_command, math_plan, math_steps

pytestmark = pytest.mark.unit


def _value(cmd, option):
    return cmd[cmd.index(option) + 1]


def test_defaults_are_pot_cot_with_digits_and_old_manifests_still_load():
    s = resolve({})
    assert (s.target_style, s.cot_style, s.eval_limit) == ("pot_cot", "digits", None)
    old = s.to_dict()
    for key in ("target_style", "cot_style", "eval_limit"):
        del old[key]  # a run.json written before these options: a steps CoT run, as they all were
    assert RunSettings.from_dict(old) == resolve({"target_style": "cot", "cot_style": "steps"})


def test_eval_data_is_evaluated_on_the_held_out_size_unless_told(tmp_path):
    items = tmp_path / "dev.jsonl"
    items.write_text('{"problem": "计算 1 + 2 等于多少？", "solution": "1 + 2 = 3"}\n')
    assert resolve({"eval_data": str(items)}).eval_limit == 100
    assert resolve({"eval_data": str(items), "smoke": True}).eval_limit == 20
    assert resolve({"eval_data": str(items), "eval_limit": 7}).eval_limit == 7


def test_styles_reach_preprocess_and_the_manifest(tmp_path):
    layout = RunLayout(tmp_path / "run")
    classic = resolve({"cot_style": "classic"})
    pre = [str(c) for c in preprocess_command(classic, layout, ["a.jsonl"])]
    assert (_value(pre, "--target_style"), _value(pre, "--cot_style")) == ("pot_cot", "classic")
    pot = resolve({"target_style": "pot"})
    pre = [str(c) for c in preprocess_command(pot, layout, ["a.jsonl"])]
    assert _value(pre, "--target_style") == "pot" and "--cot_style" not in pre
    assert pot.to_dict()["target_style"] == "pot" and classic.to_dict()["cot_style"] == "classic"


def test_cot_run_evaluates_tool_free_with_the_template_before_and_after(tmp_path):
    s, layout = resolve({"target_style": "cot"}), RunLayout(tmp_path / "run")
    for step in math_plan(s, layout):
        cmd = eval_command(s, layout, step, tmp_path / "b.ckpt")
        assert "--mode" not in cmd and "--fewshot" not in cmd and _value(cmd, "--template") == "vicuna_nosys"


def test_pot_run_evaluates_in_pot_mode_and_prompts_the_base_with_worked_examples(tmp_path):
    s, layout = resolve({"target_style": "pot", "eval_limit": 40}), RunLayout(tmp_path / "run")
    base_step, lora_step = math_plan(s, layout)
    base = eval_command(s, layout, base_step, tmp_path / "b.ckpt", limit=s.eval_limit)
    lora = eval_command(s, layout, lora_step, tmp_path / "b.ckpt", limit=s.eval_limit)
    assert _value(base, "--mode") == _value(lora, "--mode") == "pot"
    assert _value(base, "--limit") == _value(lora, "--limit") == "40"
    # before: untrained, so the PoT worked examples and no chat template; after: as it was trained
    assert (_value(base, "--fewshot"), _value(base, "--template")) == (str(POT_FEWSHOT), "none")
    assert base.count("--template") == 1 and POT_FEWSHOT.is_file()
    assert "--fewshot" not in lora and _value(lora, "--template") == "vicuna_nosys"
    assert _value(lora, "--baseline") == str(layout.eval_dir("math", "base") / "metrics.json")


def test_evaluating_a_finished_pot_run_keeps_its_mode(tmp_path):
    """scripts/eval.sh (research.run eval) on a pot run: the same PoT steps, with its own budget."""
    s, layout = resolve({"target_style": "pot"}), RunLayout(tmp_path / "run")
    base, lora = (eval_command(s, layout, step, tmp_path / "b.ckpt") for step in math_steps(s, "x.jsonl", 48, 4))
    assert _value(base, "--fewshot") == str(POT_FEWSHOT) and _value(lora, "--mode") == _value(base, "--mode") == "pot"
    assert (_value(lora, "--max_new_tokens"), _value(lora, "--batch_size"), _value(lora, "--items")) == ("48", "4", "x.jsonl")


def test_pot_cot_keeps_its_cot_style_and_evaluates_like_pot(tmp_path):
    """pot_cot: preprocess gets the CoT style of the steps after the expression; both evals run in pot
    mode, the base with the PoT worked examples (so a pot run's cached base eval serves it too)."""
    s, layout = resolve({"target_style": "pot_cot", "cot_style": "classic"}), RunLayout(tmp_path / "run")
    pre = [str(c) for c in preprocess_command(s, layout, ["a.jsonl"])]
    assert (_value(pre, "--target_style"), _value(pre, "--cot_style")) == ("pot_cot", "classic")
    base, lora = (eval_command(s, layout, step, tmp_path / "b.ckpt") for step in math_plan(s, layout))
    assert _value(base, "--fewshot") == str(POT_FEWSHOT) and _value(lora, "--mode") == "pot"
    assert base == eval_command(resolve({"target_style": "pot"}), layout, math_plan(s, layout)[0], tmp_path / "b.ckpt")
    assert "--fewshot" not in lora


@pytest.mark.parametrize("options, message", [
    ({"target_style": "pot", "cot_style": "classic"}, "--cot_style chooses the text of CoT targets"),
    ({"eval_limit": 0}, "--eval_limit must be >= 1"),
])
def test_conflicts_are_named(options, message):
    with pytest.raises(SettingsError, match=message):
        resolve(options)


def test_cli_rejects_pot_with_cot_style_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", "--target_style", "pot", "--cot_style", "steps", "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2 and "--target_style pot" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def eval_inputs(tmp_path):
    items, ckpt, config = tmp_path / "items.jsonl", tmp_path / "base.ckpt", tmp_path / "c.yaml"
    items.write_text('{"problem": "计算 1 + 2 等于多少？", "solution": "1 + 2 = 3"}\n')
    ckpt.write_bytes(b"weights")
    config.write_text("model: {}\n")
    return items, ckpt, config


def _cmd(out, max_new_tokens="192", template="none"):
    return ["python", "-m", "eval.math", "--items", "i", "--mode", "pot", "--max_new_tokens", max_new_tokens,
            "--template", template, "--output_dir", str(out)]


def test_base_eval_is_reused_by_a_second_run_and_not_across_keys(tmp_path, eval_inputs):
    items, ckpt, config = eval_inputs
    cache, calls = tmp_path / "cache", []

    def evaluate(out, accuracy):
        def work():
            calls.append(out)
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
        return work

    first, second = tmp_path / "run1" / "math_base", tmp_path / "run2" / "math_base"
    key = cache_key(_cmd(first), str(items), ckpt, str(config), "v1")
    assert key == cache_key(_cmd(second), str(items), ckpt, str(config), "v1")  # output dir not in the key
    assert reuse_or_run(key, first, evaluate(first, 0.25), cache=cache, log=lambda _: None) is False
    assert reuse_or_run(key, second, evaluate(second, 0.5), cache=cache, log=lambda _: None) is True
    assert calls == [first] and json.loads((second / "metrics.json").read_text()) == {"accuracy": 0.25}

    changed = {
        "max_new_tokens": cache_key(_cmd(first, max_new_tokens="256"), str(items), ckpt, str(config), "v1"),
        "template": cache_key(_cmd(first, template="vicuna_v1.1"), str(items), ckpt, str(config), "v1"),
        "code version": cache_key(_cmd(first), str(items), ckpt, str(config), "v2"),
    }
    items.write_text(items.read_text() + '{"problem": "计算 2 + 2 等于多少？", "solution": "2 + 2 = 4"}\n')
    changed["items"] = cache_key(_cmd(first), str(items), ckpt, str(config), "v1")
    ckpt.write_bytes(b"other weights")
    changed["checkpoint"] = cache_key(_cmd(first), str(items), ckpt, str(config), "v1")
    assert len({key, *changed.values()}) == 1 + len(changed)
    third = tmp_path / "run3" / "math_base"
    assert reuse_or_run(changed["checkpoint"], third, evaluate(third, 0.75), cache=cache, log=lambda _: None) is False
    assert calls == [first, third] and json.loads((third / "metrics.json").read_text()) == {"accuracy": 0.75}
