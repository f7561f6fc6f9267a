"""Tianchi logical-reasoning items: prompts, answer letters, self-consistency voting, scores, submission.

Data (``shared/data/tianchi_logic``, shiqiyio/logical-reasoning): one problem per line,
``{"id", "problem", "questions": [{"question", "options": [...], "answer"?: "A"}]}``. A sub-question
is keyed ``"<problem id>#<index>"`` (0-based).

Voting rules (self-consistency, Wang et al. 2022, "Self-Consistency Improves Chain of Thought
Reasoning"): every sample's letter is one vote; samples without a letter do not vote. A
question has a *majority* when one letter has strictly more votes than every other. Questions
without one (a tie, or no votes at all) go to a second round: more samples are drawn and ALL
votes of both rounds are counted again. A tie left after that goes to the tied letter that was
voted first (stable and reproducible). An ensemble pools the votes of several adapters.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

LETTERS = string.ascii_uppercase

# The instruction of the Tianchi baseline prompt, in substance: closed-world assumption, step-by-step
# analysis, last line "答案是：A".
PROMPT = ("你是一个逻辑推理专家，擅长解决逻辑推理问题。以下是一道单项选择题，所有问题都遵循闭世界假设，"
          "即未被观测到的事实都为假。请逐步分析问题，并在最后一行输出答案，最后一行的格式为\"答案是：A\"。"
          "题目如下：\n\n### 题目：\n{problem}\n\n### 问题：\n{question}\n{options}")


def question_key(problem_id: str, index: int) -> str:
    """Key of sub-question ``index`` (0-based) of a problem."""
    return f"{problem_id}#{index}"


def flatten(problems: Iterable[Mapping], where: str = "") -> list[dict]:
    """One record per sub-question: ``{"key", "problem_id", "index", "problem", "question",
    "options", "answer" (str or None)}``.

    Raises:
        ValueError: a problem without ``id``/``problem``/``questions``, a question without
            ``question`` or a non-empty ``options`` list; the message names ``where`` and the id.
    """
    out = []
    for n, prob in enumerate(problems, 1):
        pid = prob.get("id") if isinstance(prob, Mapping) else None
        if pid is None or not isinstance(prob.get("problem"), str) or not isinstance(prob.get("questions"), list):
            raise ValueError(f"{where}problem {n} ({pid!r}): needs 'id', 'problem' and a 'questions' list")
        for i, q in enumerate(prob["questions"]):
            if not isinstance(q.get("question"), str) or not q.get("options"):
                raise ValueError(f"{where}problem {pid!r} question {i}: needs 'question' and 'options'")
            out.append({"key": question_key(str(pid), i), "problem_id": str(pid), "index": i,
                        "problem": prob["problem"], "question": q["question"], "options": list(q["options"]),
                        "answer": q.get("answer")})
    return out


def render_prompt(q: Mapping) -> str:
    """The prompt of one sub-question; options are listed as ``A. text`` lines."""
    options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(q["options"]))
    return PROMPT.format(problem=q["problem"], question=q["question"], options=options)


_ANSWER_IS = re.compile(r"答案(?:是|为)?\s*[:：]?\s*[（(]?\s*([A-Z])(?![A-Za-z])")
_OUTPUT_TAG = re.compile(r"<output>\s*[（(]?\s*([A-Z])(?![A-Za-z])")
_BARE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")


def extract_letter(text: str | None, n_options: int = 26) -> str | None:
    """The answer letter of a generation, or ``None``.

    Tried in order, the last match of each winning: ``答案是：A`` (also ``答案：A``, ``答案为 A``,
    ``答案是(A)``), then ``<output>A``, then the last standalone capital letter. Only letters of
    the first ``n_options`` options count.
    """
    if not text:
        return None
    valid = set(LETTERS[:n_options])
    for pattern in (_ANSWER_IS, _OUTPUT_TAG, _BARE):
        letters = [m.group(1) for m in pattern.finditer(text) if m.group(1) in valid]
        if letters:
            return letters[-1]
    return None


def vote(letters: Sequence[str | None]) -> tuple[str | None, bool, dict[str, int]]:
    """Return ``(winner, has_majority, counts)`` for one question's letters (``None`` = no vote).

    ``has_majority``: one letter has strictly more votes than any other. Without one the winner
    is the first-voted of the tied letters (``None`` when nobody voted).
    """
    counts = Counter(x for x in letters if x is not None)
    if not counts:
        return None, False, {}
    top = max(counts.values())
    tied = [x for x in dict.fromkeys(x for x in letters if x is not None) if counts[x] == top]
    return tied[0], len(tied) == 1, dict(counts)


def accuracy(records: Sequence[Mapping]) -> dict:
    """Scores of voted records ``{"problem_id", "answer", "prediction"}`` with known answers.

    Returns:
        ``{"questions": {total, correct, accuracy}, "problems": {total, all_correct, accuracy,
        mean_accuracy}}``: question accuracy = correct / questions; problem accuracy = problems
        with every sub-question right / problems; mean_accuracy = mean of per-problem accuracies.
    """
    per: dict[str, list[int]] = {}
    for r in records:
        per.setdefault(r["problem_id"], []).append(int(r["prediction"] == r["answer"]))
    nq = sum(len(v) for v in per.values())
    cq = sum(sum(v) for v in per.values())
    np_ = len(per)
    return {"questions": {"total": nq, "correct": cq, "accuracy": cq / nq if nq else 0.0},
            "problems": {"total": np_, "all_correct": sum(all(v) for v in per.values()),
                         "accuracy": sum(all(v) for v in per.values()) / np_ if np_ else 0.0,
                         "mean_accuracy": sum(sum(v) / len(v) for v in per.values()) / np_ if np_ else 0.0}}


def submission(problems: Sequence[Mapping], predictions: Mapping[str, str | None],
               fill: str = "A") -> tuple[list[dict], list[str]]:
    """Tianchi submission rows, in the test file's order: ``{"id", "questions": [{"answer"}, ...]}``.

    Every sub-question gets a letter; one without a prediction gets ``fill`` (an answer scores
    at least as well as none). Returns ``(rows, keys that were filled)``.
    """
    rows, filled = [], []
    for prob in problems:
        answers = []
        for i, _ in enumerate(prob["questions"]):
            key = question_key(str(prob["id"]), i)
            letter = predictions.get(key)
            if letter is None:
                filled.append(key)
                letter = fill
            answers.append({"answer": letter})
        rows.append({"id": prob["id"], "questions": answers})
    return rows, filled
