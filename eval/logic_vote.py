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

import math
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from preprocess.logic import STYLES as TRAINING_STYLES
from preprocess.logic import answer_letter as extract_letter  # one extractor for teacher and evaluation
from preprocess.logic import tianchi_records, user_message

LETTERS = string.ascii_uppercase

# The instruction of the Tianchi baseline prompt, in substance: closed-world assumption, step-by-step
# analysis, last line "答案是：A". Style "baseline" asks a model that was not trained on our styles.
BASELINE_PROMPT = ("你是一个逻辑推理专家，擅长解决逻辑推理问题。以下是一道单项选择题，所有问题都遵循闭世界假设，"
                   "即未被观测到的事实都为假。请逐步分析问题，并在最后一行输出答案，最后一行的格式为\"答案是：A\"。"
                   "题目如下：\n\n### 题目：\n{problem}\n\n### 问题：\n{question}\n{options}")
PROMPT_STYLES = (*TRAINING_STYLES, "baseline")

__all__ = ["PROMPT_STYLES", "accuracy", "chance", "extract_letter", "flatten", "flatten_items", "question_key",
           "render_prompt", "split_rows", "submission", "vote"]


def question_key(problem_id: str, index: int) -> str:
    """Key of sub-question ``index`` (0-based) of a problem."""
    return f"{problem_id}#{index}"


def flatten(problems: Iterable[Mapping], where: str = "") -> list[dict]:
    """One record per sub-question: ``{"key", "problem_id", "index", "problem", "question",
    "options", "answer" (str or None)}``, split and validated by
    :func:`preprocess.logic.tianchi_records` (the same rules as training data).

    Raises:
        ValueError: a problem without ``id`` or one that ``tianchi_records`` rejects (missing or
            mistyped field, answer not an option letter); the message names ``where``, the
            problem's 1-based number and id.
    """
    out = []
    for n, prob in enumerate(problems, 1):
        pid = prob.get("id") if isinstance(prob, Mapping) else None
        if pid in (None, ""):
            raise ValueError(f"{where}problem {n}: field 'id' is missing (the submission names problems by id)")
        try:
            records = tianchi_records(dict(prob))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}problem {n} ({pid!r}): {exc}") from None
        for rec in records:
            meta = rec["logic"]
            out.append({"key": question_key(str(pid), meta["question_index"]), "problem_id": str(pid),
                        "index": meta["question_index"], "problem": meta["context"],
                        "question": meta["question"], "options": list(meta["options"]),
                        "answer": rec["solution"] or None})
    return out


def flatten_items(items: Iterable[Mapping], where: str = "") -> list[dict]:
    """:func:`flatten`'s records from ``preprocess`` items of Tianchi sub-questions (``eval.jsonl``:
    ``{"id", "answer", "logic": {"problem_id", "question_index", "context", "question", "options"}}``).

    A sub-question keeps its index in its problem, so held-out sub-questions of one problem are
    scored together as that problem (whole-problem accuracy counts the held-out ones only).
    An item whose problem had no ``id`` is grouped by its item id without the ``.qN`` suffix.

    Raises:
        ValueError: a ``logic`` field missing a key or an answer that is not an option letter;
            the message names ``where``, the item's 1-based number and id.
    """
    out = []
    for n, item in enumerate(items, 1):
        try:
            meta = item["logic"]
            pid = str(meta.get("problem_id") or str(item["id"]).rsplit(".q", 1)[0])
            answer = item.get("answer") or item.get("solution") or None
            if answer is not None and answer not in LETTERS[: len(meta["options"])]:
                raise ValueError(f"answer {answer!r} is not one of the option letters")
            out.append({"key": question_key(pid, meta["question_index"]), "problem_id": pid,
                        "index": meta["question_index"], "problem": meta["context"], "question": meta["question"],
                        "options": list(meta["options"]), "answer": answer})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}item {n} ({item.get('id')!r}): {exc}") from None
    return out


def split_rows(rows: Iterable[Mapping]) -> tuple[list[dict], list[dict], int]:
    """Sort the rows of an items file into ``(Tianchi problems, preprocess logic items, skipped)``.

    ``skipped`` counts ``preprocess`` items of another category (math in a mixed ``eval.jsonl``:
    ``eval.math`` grades those). Every other row counts as a Tianchi problem, so a malformed one
    fails :func:`flatten` with its number.
    """
    problems, items, skipped = [], [], 0
    for row in rows:
        if isinstance(row, Mapping) and "logic" in row:
            items.append(dict(row))
        elif isinstance(row, Mapping) and "category" in row and "questions" not in row:
            skipped += 1
        else:
            problems.append(row)
    return problems, items, skipped


def render_prompt(q: Mapping, style: str = "plain", template=None) -> str:
    """The prompt of one sub-question (a :func:`flatten` record).

    Args:
        style: ``plain``/``thinking``: the user message of :func:`preprocess.logic.user_message`,
            as training records are written; ``baseline``: the Tianchi baseline instruction.
        template: a :mod:`preprocess.templates` template wrapping the message as training does
            (its ``render_prompt``); ``None`` returns the bare message.

    Raises:
        ValueError: unknown ``style``.
    """
    if style == "baseline":
        options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(q["options"]))
        message = BASELINE_PROMPT.format(problem=q["problem"], question=q["question"], options=options)
    else:
        message = user_message({"context": q["problem"], "question": q["question"], "options": q["options"]},
                               style)
    return template.render_prompt(message) if template is not None else message


def second_round_size(num_samples: int, second_round: int | None) -> int:
    """Samples per adapter drawn again for questions without a majority.

    ``second_round`` when given; else ``num_samples``, except after a greedy round (``num_samples``
    1), which draws none: greedy means no sampling at all.
    """
    if second_round is not None:
        return second_round
    return 0 if num_samples == 1 else num_samples


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


def chance(questions: Sequence[Mapping]) -> dict:
    """Expected scores of guessing uniformly among the options, for :func:`accuracy`'s numbers.

    Returns:
        ``{"questions": mean of 1/len(options), "problems": mean over problems of the product of
        1/len(options) (all sub-questions right), "mean_accuracy": mean over problems of the
        per-problem mean of 1/len(options)}``; zeros for no questions.
    """
    per: dict[str, list[float]] = {}
    for q in questions:
        per.setdefault(q["problem_id"], []).append(1 / len(q["options"]))
    if not per:
        return {"questions": 0.0, "problems": 0.0, "mean_accuracy": 0.0}
    flat = [x for v in per.values() for x in v]
    return {"questions": sum(flat) / len(flat),
            "problems": sum(math.prod(v) for v in per.values()) / len(per),
            "mean_accuracy": sum(sum(v) / len(v) for v in per.values()) / len(per)}


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
