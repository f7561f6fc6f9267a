"""scripts/install.sh: --help and unknown options stop before anything is installed."""
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def copy(tmp_path):
    """The script in a fresh checkout-like tree, so that any pip or venv step would leave a .venv."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install.sh", tmp_path / "scripts" / "install.sh")
    return tmp_path


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_installs_nothing(copy, flag):
    proc = subprocess.run(["bash", "scripts/install.sh", flag], cwd=copy, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/false"})
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("Usage: bash scripts/install.sh [-v|--verbose] [-h|--help]\n")
    assert "--verbose" in proc.stdout and not (copy / ".venv").exists()


def test_unknown_option_is_refused(copy):
    proc = subprocess.run(["bash", "scripts/install.sh", "--hlep"], cwd=copy, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/false"})
    assert (proc.returncode, proc.stderr) == (2, "install.sh: unknown option --hlep (see --help)\n")
    assert not (copy / ".venv").exists()
