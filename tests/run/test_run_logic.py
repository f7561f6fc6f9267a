"""The runner's decisions for logic input (research.run): --task auto detection, the seq512 config,
the logic style and generation budget, --bags/--bag_fraction rules, which graders evaluate the
held-out items, and the eval.logic command lines (votes, bag adapters voting together)."""
import json

import pytest

from research.run.__main__ import main as run_main
from research.rundir.layout import DEFAULT_CONFIG, LOGIC_CONFIG, SMOKE_CONFIG, SMOKE_LOGIC_CONFIG, RunLayout
from research.rundir.manifest import Manifest
from research.run.settings import RunSettings, SettingsError, resolve
from research.run.stages.common import Run, StageFailed
from research.run.stages.data import mindrecord_command, preprocess_command
from research.run.stages.evaluate import eval_command, eval_graders, eval_plan

pytestmark = pytest.mark.unit

PROBLEMS = [
    {"id": "round1_train_data_000", "problem": "有一个英文到法文的词汇表：the -> le, cat -> chat。",
     "questions": [{"question": "选择题 1：\n\"the cat\" 翻译成法文是：", "options": ["le chat", "chat le"],
                    "answer": "A"},
                   {"question": "选择题 2：\n\"cat\" 翻译成法文是：", "options": ["le", "chat", "lune"],
                    "answer": "B"}]},
    {"id": "round1_train_data_001", "problem": "甲比乙高，乙比丙高。",
     "questions": [{"question": "选择题 1：\n谁最高？", "options": ["甲", "乙", "丙", "无法确定"], "answer": "A"}]},
]


@pytest.fixture
def tianchi(tmp_path):
    path = tmp_path / "tianchi.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROBLEMS), encoding="utf-8")
    return str(path)


@pytest.fixture
def contest(tmp_path):
    path = tmp_path / "contest.jsonl"
    path.write_text(json.dumps({"problem": "计算 1 + 7 等于多少？", "solution": "1 + 7 = 8"}, ensure_ascii=False)
                    + "\n", encoding="utf-8")
    return str(path)


def test_auto_detects_logic_and_picks_the_seq512_config(tianchi, contest):
    s = resolve({"data": [tianchi]})
    assert (s.task, s.logic_input, s.config, s.seq_length) == ("auto", True, str(LOGIC_CONFIG), 512)
    assert s.base_source == "smollm2_gguf"  # the seq512 YAML has SmolLM2's dimensions
    assert (s.logic_style, s.logic_max_new_tokens, s.logic_votes, s.bags) == ("plain", 16, None, 0)
    smoke = resolve({"smoke": True, "data": [tianchi]})
    assert (smoke.config, smoke.seq_length) == (str(SMOKE_LOGIC_CONFIG), 512)
    mixed = resolve({"data": [contest, tianchi]})
    assert mixed.logic_input and mixed.config == str(LOGIC_CONFIG)
    math = resolve({"data": [contest]})
    assert (math.logic_input, math.config, math.seq_length) == (False, str(DEFAULT_CONFIG), 256)
    assert resolve({"smoke": True}).config == str(SMOKE_CONFIG)  # generated corpus: math


def test_explicit_task_and_config_win(tianchi, contest):
    assert resolve({"task": "logic"}).config == str(LOGIC_CONFIG)  # no --data: the generator, still logic
    assert resolve({"task": "logic"}).stop_step == 200  # the math job's 150 steps are its own default
    forced = resolve({"task": "math", "data": [tianchi]})
    assert (forced.logic_input, forced.config) == (False, str(DEFAULT_CONFIG))
    given = resolve({"data": [tianchi], "config": str(DEFAULT_CONFIG)})
    assert given.logic_input and (given.config, given.seq_length) == (str(DEFAULT_CONFIG), 256)
    with pytest.raises(SettingsError, match="--task 'logik' unknown; known: auto, math, logic"):
        resolve({"task": "logik"})


def test_thinking_style_gets_room_and_an_explicit_budget_wins(tianchi):
    assert resolve({"data": [tianchi], "logic_style": "thinking"}).logic_max_new_tokens == 256
    s = resolve({"data": [tianchi], "max_new_tokens": 40})
    assert s.logic_max_new_tokens == s.max_new_tokens == 40


@pytest.mark.parametrize("options, message", [
    ({"bags": 1}, r"--bags must be >= 2 .*got 1"),
    ({"bag_fraction": 0.5}, r"--bag_fraction sizes the subsets of --bags N: give --bags too"),
    ({"bags": 3, "bag_fraction": 1.5}, r"--bag_fraction must be in \(0, 1\], got 1.5"),
    ({"bags": 3, "bag_fraction": 0.0}, r"--bag_fraction must be in \(0, 1\], got 0.0"),
    ({"bags": 3, "task": "math"}, r"--bags votes with eval.logic .*--task math has no logic"),
    ({"logic_votes": 0}, r"--logic_votes must be >= 1, got 0"),
    ({"logic_style": "cot"}, r"--logic_style must be one of \('plain', 'thinking'\)"),
])
def test_logic_option_errors(options, message, tianchi):
    with pytest.raises(SettingsError, match=message):
        resolve({"data": [tianchi], **options})


def test_bags_need_logic_input(tianchi, contest):
    with pytest.raises(SettingsError, match=r"--bags .*the input has no Tianchi logic records"):
        resolve({"data": [contest], "bags": 2})
    s = resolve({"data": [tianchi], "bags": 3})
    assert (s.bags, s.bag_fraction) == (3, 0.8)
    assert resolve({"data": [tianchi], "bags": 2, "bag_fraction": 0.5}).bag_fraction == 0.5


def test_cli_rejects_bad_bags_before_any_work(tianchi, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", "--data", tianchi, "--bags", "1", "--run_dir", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "--bags must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_settings_of_an_older_run_json_still_load():
    """A run.json written before the logic fields: the defaults fill them (math, no bags)."""
    d = resolve({"smoke": True}).to_dict()
    for key in ("logic_input", "logic_style", "logic_max_new_tokens", "logic_votes", "bags", "bag_fraction"):
        d.pop(key)
    s = RunSettings.from_dict(d)
    assert (s.logic_input, s.bags, s.logic_style) == (False, 0, "plain")


def _held_out(layout: RunLayout, per_category: dict) -> None:
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.data_report.write_text(json.dumps({"per_category": {c: {"eval": n, "train": 5}
                                                               for c, n in per_category.items()}}))


@pytest.mark.parametrize("task, per_category, graders", [
    ("auto", {"arithmetic": 4, "logic": 6}, ["math", "logic"]),  # mixed: each grader on its own items
    ("auto", {"logic": 6}, ["logic"]),  # eval.math would exit 2 with no math item
    ("auto", {"arithmetic": 4, "logic": 0}, ["math"]),
    ("auto", {}, ["math"]),
    ("math", {"logic": 6}, ["math"]),
    ("logic", {"arithmetic": 4, "logic": 6}, ["logic"]),
])
def test_graders_follow_the_held_out_items(task, per_category, graders, tmp_path):
    layout = RunLayout(tmp_path / "run")
    _held_out(layout, per_category)
    assert eval_graders(resolve({"smoke": True, "task": task}), layout) == graders


def test_task_logic_or_bags_without_held_out_logic_fail_clearly(tianchi, tmp_path):
    layout = RunLayout(tmp_path / "run")
    _held_out(layout, {"arithmetic": 4})
    for options in ({"task": "logic"}, {"data": [tianchi], "bags": 2}):
        with pytest.raises(StageFailed, match=r"no logic items to evaluate in .*report.json"):
            eval_graders(resolve({"smoke": True, **options}), layout)


def test_eval_data_decides_the_graders_by_its_own_records(tianchi, contest, tmp_path):
    layout = RunLayout(tmp_path / "run")  # no data/report.json needed
    assert eval_graders(resolve({"smoke": True, "eval_data": tianchi}), layout) == ["logic"]
    assert eval_graders(resolve({"smoke": True, "eval_data": contest}), layout) == ["math"]


def test_logic_eval_commands_before_and_after(tianchi, tmp_path):
    layout = RunLayout(tmp_path / "run")
    _held_out(layout, {"logic": 6, "arithmetic": 2})
    s = resolve({"smoke": True, "data": [tianchi], "logic_votes": 2, "template": "alpaca"})
    plan = eval_plan(s, layout)
    assert [(st.name, st.model) for st in plan] == [("math", "base"), ("math", "lora"),
                                                     ("logic", "base"), ("logic", "lora")]
    base_cmd, lora_cmd = (eval_command(s, layout, st, layout.random_base) for st in plan[2:])
    for cmd in (base_cmd, lora_cmd):
        assert cmd[1:5] == ["-m", "eval.logic", "--items", str(layout.eval_items)]
        opts = {k: cmd[i + 1] for i, k in enumerate(cmd[:-1]) if k.startswith("--")}
        assert (opts["--style"], opts["--max_new_tokens"], opts["--num_samples"], opts["--template"]) == \
            ("plain", "16", "2", "alpaca")
        assert "--baseline" not in cmd  # eval.logic compares with chance, not a math baseline
    assert base_cmd[base_cmd.index("--output_dir") + 1] == str(layout.eval_dir("logic", "base"))
    assert "--lora_checkpoint" not in base_cmd
    assert lora_cmd[lora_cmd.index("--lora_checkpoint"):][:2] == ["--lora_checkpoint", str(layout.lora)]
    plain = resolve({"smoke": True, "data": [tianchi]})
    default_votes = eval_command(plain, layout, eval_plan(plain, layout)[2], layout.random_base)
    assert "--num_samples" not in default_votes  # eval.logic's own default: 3 on CPU


def test_bags_vote_together_after_fine_tuning(tianchi, tmp_path):
    layout = RunLayout(tmp_path / "run")
    _held_out(layout, {"logic": 6})
    s = resolve({"smoke": True, "data": [tianchi], "bags": 3})
    base, lora = eval_plan(s, layout)
    assert base.adapters == () and lora.adapters == tuple(str(layout.bags_dir / f"bag_{k:02d}" / "lora.ckpt")
                                                          for k in range(3))
    cmd = eval_command(s, layout, lora, layout.random_base)
    i = cmd.index("--lora_checkpoint")
    assert cmd[i + 1:i + 4] == list(lora.adapters) and str(layout.lora) not in cmd


def test_preprocess_and_bag_mindrecord_commands(tianchi, tmp_path):
    layout = RunLayout(tmp_path / "run")
    s = resolve({"smoke": True, "data": [tianchi], "logic_style": "thinking"})
    cmd = [str(c) for c in preprocess_command(s, layout, [tianchi])]
    assert cmd[cmd.index("--logic_style") + 1] == "thinking"
    bag = layout.bag(1)
    assert bag.root == layout.root / "bags" / "bag_01"
    mr = [str(c) for c in mindrecord_command(s, bag, bag.root / "conversations.json")]
    assert mr[mr.index("--input_glob") + 1] == str(bag.root / "conversations.json")
    assert mr[mr.index("--output_file") + 1] == str(bag.mindrecord) and mr[mr.index("--seq_length") + 1] == "512"
    # the token budget of the records is the longest answer any grader allows: thinking's 256 > math's 24
    assert mr[mr.index("--max_new_tokens") + 1] == "256"
    plain = [str(c) for c in mindrecord_command(resolve({"data": [tianchi]}), layout)]
    assert plain[plain.index("--max_new_tokens") + 1] == "192" and "--drop_overlong" in plain


def test_header_counts_refine_after_preprocess(tmp_path):
    lines = []
    layout = RunLayout(tmp_path / "run")
    run = Run(layout, Manifest.create(layout, {}), resolve({"smoke": True}), log=lines.append, total=9)
    run.header("data")
    run.total = 8
    run.header("preprocess")
    assert lines[0].endswith("1/9 data") and lines[1].endswith("2/8 preprocess")
