"""The check that every test module has one tier marker (pytest.ini), the session environment, the real
data sets, and the fixtures shared across test folders (tests/fixtures/, registered here). Fixtures used
by one folder live in that folder's conftest.py."""
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.smollm2", "tests.fixtures.network", "tests.fixtures.llama3_tokenizer",
                  "tests.fixtures.qwen2_tokenizer", "tests.fixtures.tiny_qwen2",
                  "tests.fixtures.training"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TIERS = ("unit", "integration", "e2e")  # the markers of pytest.ini


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Refuse to run when a test module has no tier marker, or mixes tiers: `-m unit` must select
    exactly the fast tests. Runs before `-m` deselects anything, so every module is checked."""
    problems = {}
    for item in items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(tiers) != 1:
            path = Path(str(item.fspath)).relative_to(Path(str(config.rootpath)))
            problems.setdefault(str(path), "no tier marker" if not tiers else f"tiers {', '.join(tiers)} mixed")
    if problems:
        raise pytest.UsageError(
            "every test module needs exactly one tier: add `pytestmark = pytest.mark.unit` (fast, in-process), "
            "`pytest.mark.integration` (starts processes/servers, compiles graphs) or `pytest.mark.e2e` "
            "(the full chain) after its imports (see pytest.ini):\n"
            + "\n".join(f"  {path}: {why}" for path, why in sorted(problems.items())))


@pytest.fixture(scope="session", autouse=True)
def session_env(tmp_path_factory):
    """Per test session, also for the CLIs tests start: a fresh MATHLORA_CACHE (built tokenizers),
    and LOCAL_DEFAULT_PATH for MindFormers' logs (read once, when mindformers is first imported;
    else they go to ./output/log). Both are restored afterwards."""
    import os

    values = {"MATHLORA_CACHE": tmp_path_factory.mktemp("mathlora_cache"),
              "LOCAL_DEFAULT_PATH": tmp_path_factory.mktemp("mindformers_log")}
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update({name: str(path) for name, path in values.items()})
    yield values
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real data sets (``../shared/data``); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is missing (see shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_file(shared_data):
    """``shared_file("gsm8k/test.jsonl") -> Path`` of a file under ``../shared/data``; skips the
    test naming the file when it is missing."""
    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.is_file():
            pytest.skip(f"real data file missing: {path}")
        return path
    return get
