"""preprocess.teacher against a real OpenAI-compatible HTTP server of our own on 127.0.0.1."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from preprocess.logic import tianchi_records
from preprocess.teacher import TeacherClient, TeacherError, summarize

pytestmark = pytest.mark.integration

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
    in rationale mode it follows the answer stated in the prompt. ``fail`` makes it return HTTP 500,
    ``api_key`` (when set) makes it answer 401 to any other key. With ``"stream": true`` it sends the
    reply as server-sent ``chat.completion.chunk`` events, a few characters each, unless ``json_only``."""

    def __init__(self, wrong_first=0, delay=0.0):
        self.wrong_first, self.delay, self.fail, self.api_key = wrong_first, delay, False, None
        self.json_only = False
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
                    if teacher.api_key and self.headers.get("Authorization") != f"Bearer {teacher.api_key}":
                        self.send_error(401, "bad key")
                        return
                    reply = teacher.reply(body["messages"][-1]["content"])
                    if body.get("stream") and not teacher.json_only:
                        self.send_stream(reply)
                        return
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data.encode("utf-8"))
                finally:
                    with teacher.lock:
                        teacher.in_flight -= 1

            def send_stream(self, reply):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [reply[i:i + 5] for i in range(0, len(reply), 5)]
                for piece in pieces:
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode("utf-8"))
                self.wfile.write(b"data: [DONE]\n\n")

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


def test_server_errors_are_retried_then_not_cached_so_a_rerun_resumes(teacher, jobs, tmp_path):
    teacher.fail = True
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="match", max_attempts=3, workers=2,
                           max_retries=1)
    down = client.solve_all(jobs[:3])
    assert all(not r.ok and r.error and "HTTP 500" in r.reason and r.attempts == 1 for r in down)
    assert len(teacher.requests) == 3 * 2  # the openai client's own retry: one more request each
    assert summarize(down) == {"matched": 0, "rationale": 0, "failed": 0, "errors": 3, "requests": 3}
    assert not any((tmp_path / "c").rglob("*.json"))
    teacher.fail = False
    up = client.solve_all(jobs[:3])
    assert all(r.ok and r.attempts == 1 and not r.error for r in up)


def test_combined_mode_asks_with_the_answer_for_what_match_left(teacher, jobs, tmp_path):
    solved_by_match = {0, 3, 5}

    def reply(prompt):
        index = int(re.search(r"第 (\d+) 问", prompt).group(1)) - 1
        right = PROBLEM["questions"][index]["answer"]
        known = "已知正确答案" in prompt
        letter = right if known or index in solved_by_match else "ABCD"[("ABCD".index(right) + 1) % 4]
        return f"<thinking>{'给定答案' if known else '独立'}推理 {index + 1}</thinking><output>{letter}</output>"

    teacher.reply = reply
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="combined", max_attempts=2, workers=3)
    results = client.solve_all(jobs)
    assert [r.source for r in results] == ["match" if i in solved_by_match else "rationale" for i in range(8)]
    assert results[0].rationale == "独立推理 1" and results[1].rationale == "给定答案推理 2"
    # match: 1 request when right at once, 2 (max_attempts) when not, then 1 rationale request.
    assert [r.attempts for r in results] == [1 if i in solved_by_match else 3 for i in range(8)]
    assert summarize(results) == {"matched": 3, "rationale": 5, "failed": 0, "errors": 0, "requests": 18}
    assert len(teacher.requests) == 18
    assert summarize(client.solve_all(jobs))["requests"] == 0 and len(teacher.requests) == 18


def test_combined_mode_reports_both_phases_when_both_fail(teacher, jobs, tmp_path):
    teacher.reply = lambda prompt: "<output>我不确定</output>"
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="combined", max_attempts=2)
    r = client.solve(*jobs[1])
    assert not r.ok and not r.error and r.attempts == 4
    assert r.reason == "match: teacher chose ?, ?; rationale: teacher chose ?, ?; reference is B"


def test_every_reply_is_cached_so_more_attempts_later_send_only_the_extra_ones(teacher, jobs, tmp_path):
    teacher.wrong_first = 2
    first = TeacherClient(teacher.url, "m", tmp_path / "c", mode="match", max_attempts=1).solve_all(jobs)
    assert summarize(first) == {"matched": 0, "rationale": 0, "failed": 8, "errors": 0, "requests": 8}
    more = TeacherClient(teacher.url, "m", tmp_path / "c", mode="match", max_attempts=4).solve_all(jobs)
    # Attempt 1 comes from the cache; attempts 2 (wrong) and 3 (right) are new.
    assert [r.attempts for r in more] == [2] * 8 and all(r.ok for r in more)
    assert len(teacher.requests) == 8 * 3
    assert len(list((tmp_path / "c").rglob("*.json"))) == 8 * 3


def test_streamed_replies(teacher, jobs, tmp_path):
    client = TeacherClient(teacher.url, "m", tmp_path / "c", mode="rationale", stream=True, max_tokens=64)
    results = client.solve_all(jobs[:2])
    assert [r.rationale for r in results] == ["第 1 问的推理，第 1 次。", "第 2 问的推理，第 1 次。"]
    assert all(b["stream"] is True and b["max_tokens"] == 64 for _, _, b in teacher.requests)


def test_a_stream_request_answered_with_plain_json_is_an_error_not_an_empty_reply(teacher, jobs, tmp_path):
    teacher.json_only = True
    r = TeacherClient(teacher.url, "m", tmp_path / "c", stream=True).solve(*jobs[0])
    assert r.error and "has no chunks" in r.reason
    assert not any((tmp_path / "c").rglob("*.json"))


def test_a_rejected_key_stops_the_batch_with_a_clear_error(teacher, jobs, tmp_path):
    teacher.api_key = "right-key"
    client = TeacherClient(teacher.url, "m", tmp_path / "c", api_key="wrong-key", workers=1, max_retries=0)
    with pytest.raises(TeacherError, match="HTTP 401") as info:
        client.solve_all(jobs)
    assert info.value.fatal
    assert len(teacher.requests) < len(jobs)  # the sub-questions not yet started were cancelled
    assert not any((tmp_path / "c").rglob("*.json"))


def test_a_slow_reply_times_out(teacher, jobs, tmp_path):
    teacher.delay = 3.0
    client = TeacherClient(teacher.url, "m", tmp_path / "c", timeout=0.5, max_retries=0)
    r = client.solve(*jobs[0])
    assert r.error and r.reason == f"{teacher.url}: no reply within 0.5 s"


def test_requests_run_concurrently(teacher, jobs, tmp_path):
    teacher.delay = 0.3
    TeacherClient(teacher.url, "m", tmp_path / "c", workers=4).solve_all(jobs)
    assert teacher.max_in_flight >= 2


def test_unreachable_endpoint(jobs, tmp_path):
    client = TeacherClient("http://127.0.0.1:9/v1", "m", tmp_path / "c", timeout=5, max_retries=0)
    r = client.solve(*jobs[0])
    assert not r.ok and r.error and r.reason.startswith("http://127.0.0.1:9/v1: cannot connect")
    assert not any((tmp_path / "c").rglob("*.json"))


def test_bad_settings():
    with pytest.raises(ValueError, match="mode"):
        TeacherClient("http://x", "m", "/tmp", mode="guess")
    with pytest.raises(ValueError):
        TeacherClient("http://x", "m", "/tmp", max_attempts=0)
    with pytest.raises(ValueError, match="max_tokens"):
        TeacherClient("http://x", "m", "/tmp", max_tokens=0)


def test_cli_prints_the_teacher_counts_and_stops_on_a_rejected_key(teacher, tmp_path, capsys, monkeypatch):
    from preprocess.__main__ import main

    data = tmp_path / "logic.jsonl"
    data.write_text(json.dumps(PROBLEM, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    settings = {"base_url": teacher.url, "model": "m", "mode": "combined", "max_attempts": 1, "workers": 2,
                "api_key_env": "I14A_TEACHER_KEY", "max_retries": 0, "cache_dir": str(tmp_path / "cache")}
    cfg.write_text(json.dumps({"logic_style": "thinking", "teacher": settings}), encoding="utf-8")
    args = ["--input", str(data), "--output_dir", str(tmp_path / "out"), "--config", str(cfg), "--no_progress"]
    teacher.api_key = "k1"
    assert main(args) == 1
    assert f"error: teacher: {teacher.url}: HTTP 401" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.json").exists()  # the output set is written whole or not at all
    monkeypatch.setenv("I14A_TEACHER_KEY", "k1")
    assert main(args) == 0
    assert "teacher: 8 matched, 0 from the given answer, 0 failed, 0 request errors; 8 requests sent" in (
        capsys.readouterr().out)
