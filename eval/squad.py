"""SQuAD v1.1-format reading comprehension: the contest's base-capability ("original ability") check.

Items (:func:`read_first_questions`) follow MindFormers' ``squad_data_process.py --mode eval``
(mindformers ``tools/dataset_preprocess/llama/``; the contest's copy is in mindspore-courses/competition
``2024-ascend-innovation-contest/topic2-finetune/first-phase/``): for every paragraph of every
article, only the paragraph's FIRST question, and as label only that question's FIRST answer
text; the prompt is :data:`PROMPT`. On SQuAD v1.1 dev this gives the contest's 2,067 items.

Two metric families are reported per item, each on the first line of the generation:

* ``mindformers``: MindFormers' ``EmF1Metric`` (``mindformers/core/metric/metric.py``), called
  through the installed class itself. Its F1 segments text with jieba (CJK characters one by one,
  other runs cut by jieba), drops its punctuation list, and takes the longest common *contiguous*
  run of segments as overlap (``find_lcs``); its EM compares the texts with that punctuation
  removed. Only the first answer is the label, as in MindFormers' eval data. This is the contest's
  metric.
* ``squad``: the official SQuAD v1.1 evaluation (``evaluate-v1.1.py``, Rajpurkar et al. 2016):
  answers lower-cased, ASCII punctuation and the articles a/an/the removed, whitespace tokens;
  F1 from the multiset token overlap; EM on the normalised strings; the max over ALL reference
  answers of the question.
"""
from __future__ import annotations

import collections
import json
import os
import re
import string

PROMPT = ("Read the passage and answer the question below.\n\n### Instruction:\n{context}\n\n"
          "### Input:\n{question}\n\n### Response:")


def read_first_questions(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Return ``[{"id", "title", "context", "question", "answers", "label"}]``, one per paragraph.

    ``answers`` lists every reference text of the first question (official SQuAD metric),
    ``label`` is the first of them (MindFormers' metric).

    Raises:
        ValueError: not SQuAD v1.1 JSON (no ``data`` list), or a paragraph without a question or
            answer; the message names the file, article and paragraph index.
    """
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError(f"{path}: not SQuAD v1.1 JSON (expected an object with a 'data' list)")
    items = []
    for a, article in enumerate(doc["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            qas = paragraph.get("qas") or []
            if not qas or not qas[0].get("answers"):
                raise ValueError(f"{where}: no question with an answer")
            first = qas[0]
            answers = [ans["text"] for ans in first["answers"]]
            items.append({"id": str(first.get("id", f"{a}-{p}")), "title": article.get("title", ""),
                          "context": paragraph["context"], "question": first["question"],
                          "answers": answers, "label": answers[0]})
            if limit is not None and len(items) >= limit:
                return items
    return items


def render_prompt(item: dict) -> str:
    """The contest prompt (:data:`PROMPT`) for one item."""
    return PROMPT.format(context=item["context"], question=item["question"])


def first_line(generation: str) -> str:
    """What ``EmF1Metric.update`` keeps of a generation: stripped, up to the first newline."""
    return generation.strip().split("\n")[0]


# --- official SQuAD v1.1 -------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 answer normalisation: lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_f1(prediction: str, reference: str) -> float:
    """Token-overlap F1 in [0, 1] of two answers after :func:`squad_normalize`."""
    pred, ref = squad_normalize(prediction).split(), squad_normalize(reference).split()
    overlap = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, answers: list[str]) -> dict:
    """``{"exact_match": 0|1, "f1": float}``, each the max over ``answers`` (official v1.1)."""
    return {"exact_match": int(max(squad_normalize(prediction) == squad_normalize(a) for a in answers)),
            "f1": max(squad_f1(prediction, a) for a in answers)}


# --- MindFormers EmF1Metric ------------------------------------------------------------------

class MindFormersEmF1:
    """Per-item EM and F1 (0/1 and [0, 1]) with the methods of MindFormers' installed ``EmF1Metric``.

    Its ``update`` prints every batch; the scoring methods it calls (``calc_em_score``,
    ``calc_f1_score``) are used directly instead, with the same single label.
    """

    def __init__(self):
        import jieba
        import logging

        from mindformers.core.metric.metric import EmF1Metric

        jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" lines on every first use
        self._metric = EmF1Metric()

    def __call__(self, prediction: str, label: str) -> dict:
        return {"Em": int(self._metric.calc_em_score([label], prediction)),
                "F1": float(self._metric.calc_f1_score([label], prediction))}


def score_squad(items: list[dict], predictions: dict[str, str]) -> dict:
    """Grade generations; return ``{"count", "missing", "mindformers": {"F1", "Em"},
    "squad": {"f1", "exact_match"}, "items": [...]}`` with corpus scores in percent.

    Args:
        items: from :func:`read_first_questions`.
        predictions: ``{id: generation}``; a missing id scores 0 and is counted in ``missing``.
    """
    mf = MindFormersEmF1()
    records, missing = [], 0
    totals = collections.Counter()
    for item in items:
        generation = predictions.get(item["id"])
        answer = first_line(generation or "")
        if generation is None:
            missing += 1
            m, s = {"Em": 0, "F1": 0.0}, {"exact_match": 0, "f1": 0.0}
        else:
            m, s = mf(answer, item["label"]), squad_scores(answer, item["answers"])
        totals.update({"mf_em": m["Em"], "mf_f1": m["F1"], "sq_em": s["exact_match"], "sq_f1": s["f1"]})
        records.append({**item, "generation": generation, "answer": answer,
                        "mindformers": m, "squad": s})
    n = max(1, len(items))
    return {"count": len(items), "missing": missing,
            "mindformers": {"F1": 100 * totals["mf_f1"] / n, "Em": 100 * totals["mf_em"] / n},
            "squad": {"f1": 100 * totals["sq_f1"] / n, "exact_match": 100 * totals["sq_em"] / n},
            "items": records}


def retention(metrics: dict, base: dict, ratio: float = 0.9) -> dict:
    """The contest's "keep >= 90% of the base model's score" check, per metric.

    Args:
        metrics, base: dicts from :func:`score_squad` (or their metrics.json) of the fine-tuned
            and the base run.
        ratio: required fraction of the base score (contest: 0.9, data README: base Llama3-8B
            F1 59.87 / EM 44.17 → thresholds 53.88 / 39.75).

    Returns:
        ``{"mindformers.F1": {"base", "value", "threshold", "pass"}, ...}`` for the four metrics.
    """
    out = {}
    for family, names in (("mindformers", ("F1", "Em")), ("squad", ("f1", "exact_match"))):
        for name in names:
            b, v = base[family][name], metrics[family][name]
            out[f"{family}.{name}"] = {"base": b, "value": v, "threshold": ratio * b, "pass": v >= ratio * b}
    return out
