"""Teacher chains of thought for logic sub-questions from any OpenAI-compatible chat endpoint.

Protocol: ``POST {base_url}/chat/completions`` with ``{"model", "messages", "temperature"}``,
reply ``choices[0].message.content`` (OpenAI Chat Completions API; vLLM, llama.cpp server,
Ollama, MindIE and others serve the same route).

Modes (``MODES``):
    match      ask the question without its answer; retry (up to ``max_attempts``) until the
               teacher's chosen option equals the reference answer, so only rationales that
               reach the right answer are kept (rejection sampling).
    rationale  give the question and its known answer and ask for the reasoning; a reply that
               ends on another option is retried as well.
Replies are cached on disk, one JSON file per request (key: sha256 of model, mode, prompt and
answer), written atomically, so an interrupted run resumes where it stopped and a second run
sends nothing. Transport errors are not cached. Requests run concurrently in a thread pool.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from .atomic import write_json_atomic
from .logic import answer_letter, user_message

MODES = ("match", "rationale")
_THINKING = re.compile(r"<thinking>(.*?)</thinking>", re.S)
_OUTPUT = re.compile(r"<output>.*?</output>", re.S)


@dataclass(frozen=True)
class TeacherResult:
    """Outcome for one sub-question.

    Attributes:
        ok: a rationale reaching the reference answer was obtained.
        rationale: the reasoning text ("" unless ok): the ``<thinking>`` part of the reply when
            it has one, else the reply without its ``<output>`` part.
        attempts: requests sent (0 when served from the cache of an earlier run).
        reason: "" when ok, otherwise why not.
    """

    ok: bool
    rationale: str
    attempts: int
    reason: str = ""


class TeacherError(RuntimeError):
    """The endpoint could not be reached or answered with something that is not a chat completion."""


class TeacherClient:
    """Cached, concurrent client of one OpenAI-compatible chat endpoint.

    Args:
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: model name sent with each request.
        cache_dir: directory for the reply cache (created when needed).
        api_key: sent as ``Authorization: Bearer``; None sends no header.
        mode: one of ``MODES``.
        max_attempts: requests per sub-question before giving up (>= 1).
        workers: concurrent requests.
        timeout: seconds per HTTP request.
        temperature: sampling temperature sent to the endpoint (retries need > 0 to differ).

    Raises:
        ValueError: unknown ``mode`` or ``max_attempts`` / ``workers`` < 1.
    """

    def __init__(self, base_url: str, model: str, cache_dir: str | os.PathLike, *,
                 api_key: str | None = None, mode: str = "match", max_attempts: int = 4,
                 workers: int = 4, timeout: float = 120.0, temperature: float = 0.7):
        if mode not in MODES:
            raise ValueError(f"unknown teacher mode {mode!r}; expected one of {MODES}")
        if max_attempts < 1 or workers < 1:
            raise ValueError("max_attempts and workers must be >= 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.mode, self.api_key = model, mode, api_key
        self.cache_dir = Path(cache_dir)
        self.max_attempts, self.workers = max_attempts, workers
        self.timeout, self.temperature = timeout, temperature

    def prompt(self, meta: dict, answer: str) -> str:
        """The user message sent for a sub-question (``meta`` from ``logic.tianchi_records``)."""
        text = user_message(meta, "thinking")
        if self.mode == "rationale":
            text += f"\n\n已知正确答案是 {answer}。请给出得到这个答案的推理过程。"
        return text

    def chat(self, content: str) -> str:
        """Send one user message and return the reply text.

        Raises:
            TeacherError: HTTP/network error or a reply without ``choices[0].message.content``.
        """
        body = json.dumps({"model": self.model, "temperature": self.temperature,
                           "messages": [{"role": "user", "content": content}]}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                payload = json.loads(resp.read().decode("utf-8"))
            return payload["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as exc:
            raise TeacherError(f"{self.url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TeacherError(f"{self.url}: {exc}") from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TeacherError(f"{self.url}: not a chat completion ({exc!r})") from None

    def _cache_path(self, prompt: str, answer: str) -> Path:
        key = hashlib.sha256(json.dumps([self.model, self.mode, prompt, answer]).encode("utf-8")).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def solve(self, meta: dict, answer: str) -> TeacherResult:
        """Get a rationale for one sub-question whose reference option is ``answer`` (cached).

        A transport error ends the attempts and is returned (not raised, not cached), so one
        failing request does not stop a batch and is retried by the next run.
        """
        prompt = self.prompt(meta, answer)
        path = self._cache_path(prompt, answer)
        if path.is_file():
            cached = json.loads(path.read_text(encoding="utf-8"))
            return TeacherResult(cached["ok"], cached["rationale"], 0, cached["reason"])
        chosen = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = self.chat(prompt)
            except TeacherError as exc:
                return TeacherResult(False, "", attempt, str(exc))
            letter = answer_letter(reply, len(meta["options"]))
            chosen.append(letter or "?")
            if letter == answer:
                result = TeacherResult(True, _rationale(reply), attempt)
                break
        else:
            result = TeacherResult(False, "", self.max_attempts,
                                   f"teacher chose {', '.join(chosen)}; reference is {answer}")
        write_json_atomic(path, asdict(result))
        return result

    def solve_all(self, jobs: Sequence[tuple[dict, str]], progress: bool = False) -> list[TeacherResult]:
        """Run :meth:`solve` on ``(meta, answer)`` pairs concurrently; results in input order."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self.solve, meta, answer) for meta, answer in jobs]
            return [f.result() for f in tqdm(futures, desc="teacher", unit="q", disable=not progress,
                                              file=sys.stderr)]


def _rationale(reply: str) -> str:
    m = _THINKING.search(reply)
    return (m.group(1) if m else _OUTPUT.sub("", reply)).strip()
