"""Teacher chains of thought for logic sub-questions from any OpenAI-compatible chat endpoint.

Transport: the maintained ``openai`` client (Chat Completions API: ``POST {base_url}/chat/completions``,
reply ``choices[0].message.content``, or its ``delta`` chunks when streaming; vLLM, llama.cpp
server, Ollama, MindIE and ``transformers serve`` serve the same route). Its own ``max_retries``
retries connection errors, 408/409/429 and 5xx with exponential backoff (0.5 s doubling to
8 s, with jitter, honouring ``Retry-After``); ``timeout`` bounds each request (for a stream,
each read).

Modes (``MODES``):
    match      ask the question without its answer; retry (up to ``max_attempts``) until the
               teacher's chosen option equals the reference answer, so only rationales that
               reach the right answer are kept (rejection sampling).
    rationale  give the question and its known answer and ask for the reasoning; a reply that
               ends on another option is retried as well.
    combined   "match" first, then "rationale" for the sub-questions "match" could not solve
               (the Tianchi write-ups' recipe), ``max_attempts`` requests in each phase.

Cache: every reply is stored on disk, one JSON file per request (key: sha256 of model, prompt,
temperature, max_tokens and the attempt number), written atomically as soon as it arrives. A
result is always recomputed from the cached replies, so a rerun sends nothing, a run killed
mid-way keeps every reply it received and resumes with the first missing one, and raising
``max_attempts`` later only sends the extra attempts. Errors are never cached.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import httpx
from tqdm import tqdm

from .atomic import write_json_atomic
from .logic import answer_letter, user_message

MODES = ("match", "rationale", "combined")
_THINKING = re.compile(r"<thinking>(.*?)</thinking>", re.S)
_OUTPUT = re.compile(r"<output>.*?</output>", re.S)


@dataclass(frozen=True)
class TeacherResult:
    """Outcome for one sub-question.

    Attributes:
        ok: a rationale reaching the reference answer was obtained.
        rationale: the reasoning text ("" unless ok): the ``<thinking>`` part of the reply when
            it has one, else the reply without its ``<output>`` part.
        attempts: requests sent by this run (0 when every reply came from the cache).
        reason: "" when ok, otherwise why not.
        source: the phase that produced the rationale, "match" or "rationale" ("" unless ok).
        error: a request failed (network, timeout, HTTP error after the client's retries); the
            sub-question is unfinished and the next run continues it.
    """

    ok: bool
    rationale: str
    attempts: int
    reason: str = ""
    source: str = ""
    error: bool = False


class TeacherError(RuntimeError):
    """The endpoint could not be reached or answered with something that is not a chat completion.

    ``fatal``: the endpoint rejects the key (401), forbids access (403) or does not know the model
    or route (404), so every other request would fail alike.
    """

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


class TeacherClient:
    """Cached, concurrent client of one OpenAI-compatible chat endpoint.

    Args:
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: model name sent with each request.
        cache_dir: directory for the reply cache (created when needed).
        api_key: sent as ``Authorization: Bearer``; None or "" sends no header (``OPENAI_API_KEY``
            is deliberately not read, so a key never goes to an endpoint it was not meant for).
        mode: one of ``MODES``.
        max_attempts: requests per sub-question in each phase before giving up (>= 1).
        workers: concurrent requests (>= 1).
        timeout: seconds per HTTP request (per read when streaming).
        max_retries: the ``openai`` client's retries of one request, with backoff (>= 0).
        temperature: sampling temperature (retries need > 0 to differ; 0 is greedy).
        max_tokens: reply length limit in tokens; None leaves it to the server.
        stream: ask for a streamed reply (``transformers serve`` 4.57 answers chat completions
            only as a stream; other servers accept both).

    Raises:
        ValueError: unknown ``mode``, ``max_attempts`` / ``workers`` < 1, ``max_retries`` < 0
            or ``max_tokens`` < 1.
    """

    def __init__(self, base_url: str, model: str, cache_dir: str | os.PathLike, *,
                 api_key: str | None = None, mode: str = "match", max_attempts: int = 4,
                 workers: int = 4, timeout: float = 120.0, max_retries: int = 2, temperature: float = 0.7,
                 max_tokens: int | None = None, stream: bool = False):
        if mode not in MODES:
            raise ValueError(f"unknown teacher mode {mode!r}; expected one of {MODES}")
        if max_attempts < 1 or workers < 1:
            raise ValueError("max_attempts and workers must be >= 1")
        if max_retries < 0 or (max_tokens is not None and max_tokens < 1):
            raise ValueError("max_retries must be >= 0 and max_tokens >= 1")
        self.base_url = base_url.rstrip("/")
        self.model, self.mode = model, mode
        self.cache_dir = Path(cache_dir)
        self.max_attempts, self.workers = max_attempts, workers
        self.timeout, self.temperature, self.max_tokens, self.stream = timeout, temperature, max_tokens, stream
        import openai  # here, not at module level: it takes seconds, and only a teacher run needs it

        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "", timeout=timeout,
                                    max_retries=max_retries)

    def prompt(self, meta: dict, answer: str, phase: str | None = None) -> str:
        """The user message sent for a sub-question (``meta`` from ``logic.tianchi_records``) in
        ``phase`` ("match" or "rationale"; default: the client's mode, "match" for "combined")."""
        text = user_message(meta, "thinking")
        if (phase or self.mode) == "rationale":
            text += f"\n\n已知正确答案是 {answer}。请给出得到这个答案的推理过程。"
        return text

    def chat(self, content: str) -> str:
        """Send one user message and return the reply text ("" for a reply without content).

        Raises:
            TeacherError: network error, timeout or HTTP error (after the client's retries), or a
                reply that is not a chat completion.
        """
        import openai

        kwargs = {"model": self.model, "temperature": self.temperature, "stream": self.stream,
                  "messages": [{"role": "user", "content": content}]}
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        try:
            response = self.client.chat.completions.create(**kwargs)
            if not self.stream:
                return response.choices[0].message.content or ""
            chunks = list(response)
            if not chunks:  # e.g. a plain JSON reply: not to be cached as an empty answer
                raise TeacherError(f"{self.base_url}: the streamed reply has no chunks (does the server stream?)")
            return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        except openai.APITimeoutError:
            raise TeacherError(f"{self.base_url}: no reply within {self.timeout} s") from None
        except openai.APIConnectionError as exc:
            raise TeacherError(f"{self.base_url}: cannot connect ({exc.__cause__ or exc})") from None
        except openai.APIStatusError as exc:
            # Wrong key, forbidden or unknown model/route: every other request would fail the same way.
            raise TeacherError(f"{self.base_url}: HTTP {exc.status_code} {str(exc.message)[:200]}",
                               fatal=isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError,
                                                     openai.NotFoundError))) from None
        except (openai.APIError, httpx.HTTPError) as exc:
            raise TeacherError(f"{self.base_url}: reply broken off ({exc})") from None
        except (AttributeError, IndexError, TypeError) as exc:
            hint = "" if self.stream else " (a server that only streams, like `transformers serve`, needs stream)"
            raise TeacherError(f"{self.base_url}: not a chat completion ({exc!r}){hint}") from None

    def _cache_path(self, prompt: str, attempt: int) -> Path:
        key = hashlib.sha256(json.dumps([self.model, prompt, self.temperature, self.max_tokens, attempt])
                             .encode("utf-8")).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def _reply(self, prompt: str, attempt: int) -> tuple[str, bool]:
        """``(reply, sent)``: the cached reply to ``prompt`` for ``attempt``, or a new one, cached."""
        path = self._cache_path(prompt, attempt)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))["reply"], False
        reply = self.chat(prompt)
        write_json_atomic(path, {"model": self.model, "attempt": attempt, "prompt": prompt, "reply": reply})
        return reply, True

    def solve(self, meta: dict, answer: str) -> TeacherResult:
        """Get a rationale for one sub-question whose reference option is ``answer``.

        A transport error ends the sub-question and is returned (``error=True``, replies received
        so far stay cached), so one failing request does not stop a batch and the next run
        continues where it stopped.

        Raises:
            TeacherError: a fatal one (``TeacherError.fatal``: 401, 403, 404).
        """
        phases = ("match", "rationale") if self.mode == "combined" else (self.mode,)
        sent, gave_up = 0, []
        for phase in phases:
            prompt = self.prompt(meta, answer, phase)
            chosen = []
            for attempt in range(self.max_attempts):
                try:
                    reply, new = self._reply(prompt, attempt)
                except TeacherError as exc:
                    if exc.fatal:
                        raise
                    return TeacherResult(False, "", sent + 1, str(exc), error=True)
                sent += new
                letter = answer_letter(reply, len(meta["options"]))
                if letter == answer:
                    return TeacherResult(True, _rationale(reply), sent, source=phase)
                chosen.append(letter or "?")
            gave_up.append(("" if len(phases) == 1 else f"{phase}: ") + f"teacher chose {', '.join(chosen)}")
        return TeacherResult(False, "", sent, f"{'; '.join(gave_up)}; reference is {answer}")

    def solve_all(self, jobs: Sequence[tuple[dict, str]], progress: bool = False) -> list[TeacherResult]:
        """Run :meth:`solve` on ``(meta, answer)`` pairs, ``workers`` at a time; results in input order.

        Raises:
            TeacherError: as :meth:`solve`; sub-questions not yet started are cancelled.
        """
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self.solve, meta, answer) for meta, answer in jobs]
            try:
                return [f.result() for f in tqdm(futures, desc="teacher", unit="q", disable=not progress,
                                                  file=sys.stderr)]
            except TeacherError:
                pool.shutdown(cancel_futures=True)
                raise


def summarize(results: Sequence[TeacherResult]) -> dict[str, int]:
    """Counts for the preprocess report: ``matched`` / ``rationale`` (ok, by phase), ``failed``
    (the teacher never reached the reference), ``errors`` (unfinished: request errors, the next
    run continues them) and ``requests`` (sent by this run; 0 when all came from the cache)."""
    by_source = Counter(r.source for r in results if r.ok)
    return {"matched": by_source["match"], "rationale": by_source["rationale"],
            "failed": sum(not r.ok and not r.error for r in results), "errors": sum(r.error for r in results),
            "requests": sum(r.attempts for r in results)}


def _rationale(reply: str) -> str:
    m = _THINKING.search(reply)
    return (m.group(1) if m else _OUTPUT.sub("", reply)).strip()
