"""Every command line of the suite, as a user meets it: ``--help`` prints ``python -m <module>`` (or the
script's) usage with the whole description, abbreviated or misspelt options are refused with exit
status 2 and a "did you mean" hint, user errors are one line, and ``mathlora`` lists every command."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mathlora.__main__ import COMMANDS
from mathlora.__main__ import main as mathlora_main
from preprocess.cli import Failure, Parser, UserError, reported_as, run_main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
# A bound against a hung process only (the machine may be loaded), not a speed check.
TIMEOUT = 300


def modules(table: dict = COMMANDS) -> list[str]:
    """Every module of the mathlora table."""
    found = []
    for target, second in table.values():
        found += modules(second) if isinstance(second, dict) else [target]
    return found


# The CLIs mathlora does not list: a library module pointing at its command, and the tests' S3 server.
CLIS = modules() + ["research.llama3.checkpoint.to_hf", "research.obs.local_server"]
# A command with subcommands is misspelt inside one of them.
SUBCOMMAND = {"research.run": ["finetune"], "research.llama3.checkpoint.convert_hf": ["to_hf"],
              "research.llama3.checkpoint.peft_adapter": None, "research.obs": None}
SCRIPTS = ["finetune.sh", "eval.sh", "install.sh", "upload_obs.sh", "msrun_launcher.sh"]


def run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GLOG_v": "3"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_every_cli_has_a_module_file():
    for module in CLIS:
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module


@pytest.mark.parametrize("module", CLIS)
def test_help_prints_python_m_usage_and_the_description(module):
    proc = run([sys.executable, "-m", module, "--help"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: python -m {module} "), proc.stdout[:200]
    path = ROOT / Path(*module.split("."))
    source = (path / "__main__.py" if path.is_dir() else path.with_suffix(".py")).read_text(encoding="utf-8")
    if "description=__doc__" in source:  # the whole module docstring, not a cut of it
        doc = ast.get_docstring(ast.parse(source))
        assert doc.splitlines()[0] in proc.stdout and doc.splitlines()[-1].strip() in proc.stdout
    # A shell continuation inside a non-raw docstring joins lines with a run of spaces (the usage block
    # above the first blank line is argparse's own wrapping).
    for line in proc.stdout.split("\n\n", 1)[1].splitlines():
        assert "     --" not in line.strip(), line


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help_prints_its_usage(script):
    proc = run(["bash", str(ROOT / "scripts" / script), "--help"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    usage = proc.stdout.lower()
    assert f"bash scripts/{script}" in usage or "usage: python -m research.run" in usage, proc.stdout[:300]


@pytest.mark.parametrize("module", CLIS)
def test_misspelt_prefix_option_is_refused(module):
    """``--verbos`` (a prefix of --verbose, which every CLI has) must not be taken for --verbose."""
    sub = SUBCOMMAND.get(module, [])
    if sub is None:  # subcommands with required arguments of their own: the first one's help names it
        sub = []
    proc = run([sys.executable, "-m", module, *sub, "--verbos"])
    assert proc.returncode == 2, (proc.stdout[-500:], proc.stderr[-1500:])
    assert "unrecognized arguments: --verbos" in proc.stderr or "invalid choice" in proc.stderr, proc.stderr[-800:]
    if "unrecognized" in proc.stderr:
        assert "(did you mean --verbose?)" in proc.stderr


def test_finetune_sh_refuses_an_abbreviation_with_a_hint():
    proc = run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--smok"])
    assert proc.returncode == 2
    assert "unrecognized arguments: --smok (did you mean --smoke?)" in proc.stderr
    assert "run directory" not in proc.stdout  # nothing started


@pytest.mark.parametrize("args, message", [
    (["-m", "research.llama3.train.finetune", "--config", "configs/tiny/finetune_lora_cpu.yaml",
      "--train_dataset", "missing.mindrecord", "--output_dir", "out", "--run_dir", "run"],
     "error: --train_dataset missing.mindrecord: no such file"),
    (["-m", "eval.run_report", "--run_dir", "missing_run"], "error: --run_dir missing_run: no such directory"),
])
def test_missing_input_is_one_error_line(args, message):
    proc = run([sys.executable, *args])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [message]


def test_mathlora_lists_every_command(capsys):
    assert mathlora_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mathlora <command>")
    for name in COMMANDS:
        assert f"\n  {name} " in out
    assert mathlora_main(["eval", "--help"]) == 0
    assert "\n  math " in capsys.readouterr().out


def test_mathlora_unknown_command_suggests_one(capsys):
    assert mathlora_main(["tran"]) == 2
    assert "unknown command 'tran' (did you mean train?)" in capsys.readouterr().err


def test_mathlora_runs_a_command_with_its_own_name_in_usage_and_exit_2_on_user_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        mathlora_main(["report", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: mathlora report ")
    assert mathlora_main(["report", "--run_dir", "no/such/run"]) == 2
    assert capsys.readouterr().err.strip() == "error: --run_dir no/such/run: no such directory"


def test_console_script_is_declared():
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"mathlora = mathlora.__main__:main"' in text


def test_parser_refuses_abbreviations_and_suggests():
    parser = Parser(prog="python -m x")
    parser.add_argument("--config", required=True)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--conf", "a.yaml"])
    assert exit_info.value.code == 2


def test_reported_errors_are_one_line_with_the_status_of_their_kind(capsys):
    def main(argv):
        with reported_as(UserError, FileNotFoundError), reported_as(Failure, RuntimeError):
            raise {"user": FileNotFoundError("a.yaml: no such file"), "failure": RuntimeError("upload failed")}[argv[0]]

    assert run_main(main, ["user"]) == 2
    assert run_main(main, ["failure"]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: a.yaml: no such file", "error: upload failed"]
    with pytest.raises(KeyError):
        with reported_as(UserError, ValueError):
            raise KeyError("not reported")
