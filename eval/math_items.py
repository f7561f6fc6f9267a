"""Read math evaluation items from any of the formats the project meets, into one shape.

Output items: ``{"id", "category", "problem", "answer", ...}`` (other keys kept). Accepted lines:

* already prepared items (``preprocess`` ``eval.jsonl``): ``problem`` and ``answer`` present;
* contest files (train.json, test set, ``sample_dev.jsonl``): ``{"problem", "solution"}``; the
  reference answer is the solution's final number (every contest solution ends with its result,
  :func:`preprocess.answer.extract.extract_answer`), the category comes from :func:`preprocess.classify.classify`;
* GSM8K (openai/grade-school-math): ``{"question", "answer"}`` with the result after ``#### ``;
* CMATH (weitianwen/cmath): ``{"question", "golden", "grade"}``, ``grade`` becomes the category.

A line without an ``id`` gets its 1-based line number.
"""
from __future__ import annotations

import os

from preprocess.answer.extract import extract_answer
from eval.files import read_jsonl
from preprocess.classify import classify
from preprocess.answer.boxed import gsm8k_final


def normalize_item(row: dict, where: str) -> dict:
    """Return ``row`` as an evaluation item (see module docstring); ``where`` is ``file:line``.

    Raises:
        ValueError: a row of no known format, or whose reference answer cannot be found; the
            message starts with ``where``.
    """
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    item = dict(row)
    if "problem" in row and "answer" in row:
        pass
    elif "problem" in row and "solution" in row:
        item["answer"] = extract_answer(str(row["solution"]))
        item.setdefault("category", classify(str(row["problem"]), str(row["solution"])))
    elif "question" in row and "golden" in row:
        item.update(problem=row["question"], answer=str(row["golden"]))
        item.setdefault("category", str(row.get("grade") or "cmath"))
    elif "question" in row and "answer" in row:
        item.update(problem=row["question"], answer=gsm8k_final(str(row["answer"])), solution=row["answer"])
        item.setdefault("category", "gsm8k")
    else:
        raise ValueError(f"{where}: unknown item format, keys {sorted(row)}; expected problem+answer, "
                         f"problem+solution (contest), question+answer (GSM8K) or question+golden (CMATH)")
    if item["answer"] in (None, ""):
        raise ValueError(f"{where}: no reference answer found")
    return item


def read_math_items(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Read up to ``limit`` items from a JSONL file in any accepted format.

    Raises:
        ValueError: invalid JSON or an unusable line (file and line named); OSError: unreadable file.
    """
    items = []
    for line, obj in read_jsonl(path, limit=limit, with_lines=True):
        item = normalize_item(obj, f"{path}:{line}")
        item.setdefault("id", line)
        items.append(item)
    return items
