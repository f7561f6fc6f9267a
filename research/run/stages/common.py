"""What every stage shares: the run in progress (:class:`Run`), running a stage's command in the
suite's environment (:func:`run_command`), its failure (:class:`StageFailed`), and the YAML check that
comes before any stage (:func:`config_problems`)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from research.rundir.layout import ROOT, RunLayout
from research.rundir.manifest import Manifest
from research.run.settings import RunSettings

PY = sys.executable
LOG_TAIL_LINES = 30


class StageFailed(RuntimeError):
    """A stage's process exited with an error; the message names the stage, exit status and log."""


@dataclass
class Run:
    """A run in progress: its directory, manifest and settings, plus per-invocation options.

    Attributes:
        resume: continue an unfinished training stage from its newest checkpoint.
        log: where stage headers and notes go (print by default).
    """

    layout: RunLayout
    manifest: Manifest
    settings: RunSettings
    resume: bool = False
    log: Callable[[str], None] = print
    t0: float = field(default_factory=time.time)
    total: int = 0
    _step: int = 0

    def header(self, title: str) -> None:
        self._step += 1
        self.log(f"\n== [{time.time() - self.t0:.0f}s] {self._step}/{self.total} {title}")


def subprocess_env(layout: RunLayout | None) -> dict:
    """Environment of every stage process: the suite importable, MindFormers' logs in the run
    directory (instead of ./output/log; left as it is without a run), MindSpore errors only on the
    console, never the HF hub."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if layout is not None:
        env["LOCAL_DEFAULT_PATH"] = str(layout.mindformers_logs)
    env.setdefault("GLOG_v", "3")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def log_tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""


def exit_text(rc: int) -> str:
    """A process's exit status for an error message; SIGKILL (-9) is named, as on a shared host it is
    most often the kernel's OOM killer, which leaves nothing in the process's own log."""
    if rc == -9:
        return "exit -9: killed by SIGKILL, usually the out-of-memory killer (see dmesg); free memory and rerun"
    return f"exit {rc}"


def run_command(layout: RunLayout, stage: str, cmd: list, log: Path | None = None, tee_stderr: bool = False) -> None:
    """Run ``cmd`` from the repository root. With ``log``: stderr (and stdout unless ``tee_stderr``)
    goes to that file; ``tee_stderr`` also copies stderr to the console (progress bars).

    Raises:
        StageFailed: non-zero exit, with the log's last lines.
    """
    cmd = [str(c) for c in cmd]
    env = subprocess_env(layout)
    if log is None:
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            if tee_stderr:
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
                for chunk in iter(lambda: os.read(proc.stderr.fileno(), 4096), b""):
                    out.write(chunk)
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                rc = proc.wait()
            else:
                rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        where = f"; see {log}:\n{log_tail(log)}" if log else ""
        raise StageFailed(f"stage {stage} failed ({exit_text(rc)}){where}")


def config_problems(config: str) -> str | None:
    """Check a MindFormers YAML (``python -m research.llama3.config.config_check``: file, line, key path and a
    suggestion for each misspelt key) before any data work; its own process, as MindFormers' import is
    heavy. Returns the problems (stderr text), or None when the YAML passes."""
    proc = subprocess.run([PY, "-m", "research.llama3.config.config_check", config], cwd=ROOT, env=subprocess_env(None),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return None if proc.returncode == 0 else "\n".join(
        line for line in proc.stderr.splitlines() if line.startswith("error: ")) or proc.stderr[-2000:]

