"""preprocess.teacher against a real OpenAI-compatible server: ``transformers serve`` (transformers
4.57.1) on 127.0.0.1 serving the embedded SmolLM2-135M-Instruct, started and stopped by these tests.

Requests are counted at the server, from uvicorn's access log. Greedy decoding (temperature 0)
makes the replies reproducible, so an interrupted-and-resumed run can be compared with an
uninterrupted one. Small on purpose: three sub-questions, 24-token replies, one attempt per phase.
"""
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from preprocess.logic import tianchi_records
from preprocess.teacher import TeacherClient, summarize

pytestmark = pytest.mark.integration

PROBLEM = {
    "id": "heights",
    "problem": "甲比乙高，乙比丙高。\n\n回答以下选择题：",
    "questions": [
        {"question": "选择题 1：\n谁最高？", "options": ["甲", "乙", "丙"], "answer": "A"},
        {"question": "选择题 2：\n谁最矮？", "options": ["甲", "乙", "丙"], "answer": "C"},
        {"question": "选择题 3：\n乙比谁高？", "options": ["甲", "丙"], "answer": "B"},
    ],
}
_POST = '"POST /v1/chat/completions HTTP/1.1"'


class TransformersServe:
    """``transformers serve`` in a subprocess on a fixed loopback port; ``kill()`` (SIGKILL, as a crash)
    and ``start()`` again keep the port. Each start logs to its own file."""

    def __init__(self, model_dir: Path, port: int, workdir: Path):
        self.model_dir, self.port, self.workdir = model_dir, port, workdir
        self.url = f"http://127.0.0.1:{port}/v1"
        self.proc, self.starts = None, 0

    @property
    def log(self) -> Path:
        return self.workdir / f"serve-{self.starts}.log"

    def start(self):
        self.starts += 1
        # One torch thread per request: the requests themselves run in parallel (workers=2), and on a
        # busy 2-core machine each multi-threaded op would wait for a descheduled team thread.
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "transformers.commands.transformers_cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--dtype", "float32", "--force_model", str(self.model_dir),
                 "--log_level", "info"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited ({self.proc.returncode}):\n"
                                   f"{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self._load_model()
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"transformers serve did not answer on port {self.port}:\n{self.log.read_text()[-2000:]}")

    def _load_model(self):
        # The model loads on the first request, and two first requests at once race in
        # transformers 4.57 (one gets HTTP 500 "Cannot copy out of meta tensor"; the client's retry
        # recovers). One request before the tests keeps the server's request count exact.
        import openai

        stream = openai.OpenAI(base_url=self.url, api_key="", max_retries=0, timeout=120).chat.completions.create(
            model="warm-up", messages=[{"role": "user", "content": "Hi"}], max_tokens=1, stream=True)
        assert [chunk for chunk in stream]
        self.warm_up = self.requests(warm_up=0)
        return self

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def requests(self, warm_up=None) -> int:
        """Chat completion requests the current server process has received after its warm-up."""
        posts = sum(_POST in line for line in self.log.read_text().splitlines())
        return posts - (self.warm_up if warm_up is None else warm_up)


@pytest.fixture(scope="module")
def smollm2_hf_dir(conv_smollm2_hf_reference, conv_smollm2_tokenizer, tmp_path_factory):
    """The embedded SmolLM2 as a transformers model directory (what ``transformers serve`` loads):
    the weights as transformers loads them from the GGUF, the tokenizer with the GGUF's special
    tokens and chat template (``research.llama3.tokenizers.gguf_tokenizer``)."""
    out = tmp_path_factory.mktemp("smollm2_hf")
    conv_smollm2_hf_reference.save_pretrained(out)
    assert conv_smollm2_tokenizer.chat_template, "the GGUF carries no chat template"
    conv_smollm2_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def server(smollm2_hf_dir, free_port, tmp_path_factory):
    serve = TransformersServe(smollm2_hf_dir, free_port(), tmp_path_factory.mktemp("serve")).start()
    yield serve
    serve.kill()


@pytest.fixture(scope="module")
def jobs():
    return [(r["logic"], r["solution"]) for r in tianchi_records(PROBLEM)]


def client(server, cache_dir, workers=2):
    return TeacherClient(server.url, "smollm2-135m-instruct", cache_dir, mode="combined", max_attempts=1,
                         workers=workers, temperature=0.0, max_tokens=24, stream=True, timeout=120, max_retries=1)


def outcome(results):
    """What a run produced, without how many requests it took."""
    return [(r.ok, r.rationale, r.source, r.reason, r.error) for r in results]


@pytest.fixture(scope="module")
def first_run(server, jobs, tmp_path_factory):
    """An uninterrupted run into an empty cache: ``(results, cache_dir, requests counted at the server)``."""
    cache = tmp_path_factory.mktemp("teacher_cache")
    before = server.requests()
    results = client(server, cache).solve_all(jobs)
    return results, cache, server.requests() - before


def test_first_run_fills_the_cache_and_a_rerun_sends_nothing(server, jobs, first_run):
    results, cache, sent = first_run
    counts = summarize(results)
    assert counts["errors"] == 0
    assert counts["matched"] + counts["rationale"] + counts["failed"] == len(jobs)
    # One request per phase tried: 1 when "match" succeeds, 2 otherwise (combined, max_attempts=1).
    assert [r.attempts for r in results] == [1 if r.source == "match" else 2 for r in results]
    assert sent == counts["requests"] == sum(r.attempts for r in results) >= len(jobs)
    assert len(list(cache.rglob("*.json"))) == sent
    for (meta, answer), r in zip(jobs, results):
        if r.ok:
            assert r.rationale and r.source in ("match", "rationale")
        else:
            letters = "[" + "ABC"[:len(meta["options"])] + "?]"
            assert re.fullmatch(f"match: teacher chose {letters}; rationale: teacher chose {letters}; "
                                f"reference is {answer}", r.reason), r.reason

    before = server.requests()
    again = client(server, cache).solve_all(jobs)
    assert server.requests() == before
    assert summarize(again)["requests"] == 0 and outcome(again) == outcome(results)


def test_killing_the_server_mid_run_loses_nothing_and_the_next_run_resumes(server, jobs, first_run, tmp_path):
    reference, _, reference_requests = first_run
    cache = tmp_path / "cache"
    killed = {}

    def run():
        killed["results"] = client(server, cache, workers=1).solve_all(jobs)

    worker = threading.Thread(target=run)
    worker.start()
    while worker.is_alive() and not any(cache.rglob("*.json")):
        time.sleep(0.02)
    server.kill()  # SIGKILL right after the first reply is cached, while later ones are outstanding
    worker.join()
    interrupted = killed["results"]
    kept = len(list(cache.rglob("*.json")))
    assert 1 <= kept < reference_requests
    errors = [r for r in interrupted if r.error]
    assert errors and all(r.reason.startswith(server.url) for r in errors)
    assert summarize(interrupted)["errors"] == len(errors)

    server.start()
    resumed = client(server, cache).solve_all(jobs)
    # Only the replies missing from the cache are requested: nothing lost, nothing asked twice.
    assert server.requests() == summarize(resumed)["requests"] == reference_requests - kept
    assert len(list(cache.rglob("*.json"))) == reference_requests
    assert outcome(resumed) == outcome(reference)
