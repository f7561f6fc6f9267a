"""preprocess.teacher against a real OpenAI-compatible HTTP server of our own on 127.0.0.1."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from preprocess.logic import tianchi_records
from preprocess.teacher import TeacherClient

PROBLEM = {
    "id": "t_001",
    "problem": "甲、乙、丙三人中只有一人说真话。\n\n回答以下选择题：",
    "questions": [
        {"question": f"选择题 {i + 1}：\n第 {i + 1} 问？", "options": ["甲", "乙", "丙", "无法确定"],
         "answer": "ABCD"[i % 4]}
        for i in range(8)
    ],
}


class Teacher:
    """A tiny chat-completions server. It answers wrong ``wrong_first`` times per prompt, then right;
    in rationale mode it follows the answer stated in the prompt. ``fail`` makes it return HTTP 500."""

    def __init__(self, wrong_first=0, delay=0.0):
        self.wrong_first, self.delay, self.fail = wrong_first, delay, False
        self.requests, self.in_flight, self.max_in_flight = [], 0, 0
        self.seen = {}
        self.lock = threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with teacher.lock:
                    teacher.requests.append((self.path, self.headers.get("Authorization"), body))
                    teacher.in_flight += 1
                    teacher.max_in_flight = max(teacher.max_in_flight, teacher.in_flight)
                try:
                    time.sleep(teacher.delay)
                    if teacher.fail:
                        self.send_error(500, "teacher down")
                        return
                    reply = teacher.reply(body["messages"][-1]["content"])
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data.encode("utf-8"))
                finally:
                    with teacher.lock:
                        teacher.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, prompt):
        known = re.search(r"已知正确答案是 ([A-H])", prompt)
        index = int(re.search(r"第 (\d+) 问", prompt).group(1)) - 1
        right = known.group(1) if known else PROBLEM["questions"][index]["answer"]
        with self.lock:
            n = self.seen[prompt] = self.seen.get(prompt, 0) + 1
        letter = right if n > self.wrong_first else "ABCD"[("ABCD".index(right) + 1) % 4]
        return f"<thinking>第 {index + 1} 问的推理，第 {n} 次。</thinking>\n<output>{letter}</output>"


@pytest.fixture()
def jobs():
    return [(r["logic"], r["solution"]) for r in tianchi_records(PROBLEM)]


@pytest.fixture()
def teacher():
    t = Teacher()
    yield t
    t.server.shutdown()
    t.server.server_close()


def test_match_mode_retries_until_right_and_caches(teacher, jobs, tmp_path):
    teacher.wrong_first = 1
    client = TeacherClient(teacher.url, "demo-model", tmp_path / "cache", api_key="k123",
                           mode="match", max_attempts=3, workers=4)
    results = client.solve_all(jobs)
    assert [r.ok for r in results] == [True] * 8 and [r.attempts for r in results] == [2] * 8
    assert results[2].rationale == "第 3 问的推理，第 2 次。"
    path, auth, body = teacher.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k123" and body["model"] == "demo-model"
    assert "已知正确答案" not in body["messages"][0]["content"]  # match mode does not reveal it
    assert len(teacher.requests) == 16
    # A second run (a resumed job) is served from the cache: no request, same rationales.
    again = TeacherClient(teacher.url, "demo-model", tmp_path / "cache", mode="match").solve_all(jobs)
    assert len(teacher.requests) == 16
    assert [r.rationale for r in again] == [r.rationale for r in results]
    assert {r.attempts for r in again} == {0}


def test_match_mode_gives_up_after_max_attempts(teacher, jobs, tmp_path):
    teacher.wrong_first = 5
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="match", max_attempts=2, workers=2)
    r = client.solve(*jobs[0])
    assert not r.ok and r.attempts == 2 and r.reason == "teacher chose B, B; reference is A"
    assert client.solve(*jobs[0]).attempts == 0  # the give-up is cached as well
    assert len(teacher.requests) == 2


def test_rationale_mode_states_the_known_answer(teacher, jobs, tmp_path):
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="rationale", workers=3)
    results = client.solve_all(jobs)
    assert all(r.ok and r.attempts == 1 for r in results)
    prompts = [b["messages"][0]["content"] for _, _, b in teacher.requests]
    assert sorted(re.search(r"已知正确答案是 ([A-H])", p).group(1) for p in prompts) == sorted(
        a for _, a in jobs)


def test_server_errors_are_not_cached_so_a_rerun_resumes(teacher, jobs, tmp_path):
    teacher.fail = True
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="match", max_attempts=3, workers=2)
    down = client.solve_all(jobs[:3])
    assert all(not r.ok and "HTTP 500" in r.reason and r.attempts == 1 for r in down)
    teacher.fail = False
    up = client.solve_all(jobs[:3])
    assert all(r.ok and r.attempts == 1 for r in up)


def test_requests_run_concurrently(teacher, jobs, tmp_path):
    teacher.delay = 0.3
    TeacherClient(teacher.url, "m", tmp_path / "c", workers=4).solve_all(jobs)
    assert teacher.max_in_flight >= 2


def test_unreachable_endpoint(jobs, tmp_path):
    client = TeacherClient("http://127.0.0.1:9/v1", "m", tmp_path / "c", timeout=5)
    r = client.solve(*jobs[0])
    assert not r.ok and "127.0.0.1:9" in r.reason
    assert not any((tmp_path / "c").rglob("*.json"))


def test_bad_settings():
    with pytest.raises(ValueError, match="mode"):
        TeacherClient("http://x", "m", "/tmp", mode="guess")
    with pytest.raises(ValueError):
        TeacherClient("http://x", "m", "/tmp", max_attempts=0)
