"""One conversation -> training record, with no I/O: its turns validated (:func:`conversation_turns`),
tokenized with the chat template's masking (:func:`encode_conversation`), fitted to seq_length + 1
(:func:`fit_length`), packed (:func:`first_fit_decreasing`) and padded into rows (:func:`pad_records`). The
MindRecord writer (``research.llama3.records.mindrecord``) runs these in its worker processes."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from preprocess.budget import IGNORE_INDEX
from preprocess.readers import lone_surrogate
from preprocess.templates import EOS, ChatTemplate

_ROLES = ("human", "gpt")


def conversation_turns(conv, where: str) -> tuple[list[tuple[str, str]], str | None]:
    """Validate one fastchat conversation and return its ``(question, answer)`` pairs.

    As MindFormers' qa mode does, a first message not from ``human`` (``gpt`` or ``system``) is skipped. A trailing
    ``human`` message without an answer is trimmed (MindFormers would mask the whole sample).

    Args:
        conv: ``{"id", "conversations": [{"from": "human"|"gpt", "value": str}, ...]}``.
        where: location for messages, e.g. ``conv.json[12]``.

    Returns:
        The pairs (at least one) and a note naming what was skipped or trimmed, or None.

    Raises:
        ValueError: ``where`` plus the offending field, e.g. ``conv.json[3].conversations[1].from``.
    """
    if not isinstance(conv, dict):
        raise ValueError(f"{where}: not an object")
    turns = conv.get("conversations")
    if not isinstance(turns, list):
        raise ValueError(f"{where}.conversations: missing or not a list")
    notes = []
    for i, turn in enumerate(turns):
        # A leading system turn (FastChat, LLaMA-Factory sharegpt) is skipped like any leading non-human one.
        if not isinstance(turn, dict) or turn.get("from") not in (_ROLES + ("system",) if i == 0 else _ROLES):
            raise ValueError(f"{where}.conversations[{i}].from: expected 'human' or 'gpt'")
        if not isinstance(turn.get("value"), str):
            raise ValueError(f"{where}.conversations[{i}].value: missing or not a string")
    # The tokenizer cannot encode a lone surrogate: one such turn would end the whole conversion.
    bad_text = lone_surrogate(turns, "conversations")
    if bad_text:
        raise ValueError(f"{where}: {bad_text}")
    start = 0
    if turns and turns[0]["from"] != "human":
        start, notes = 1, ["leading non-human message skipped"]
    body = turns[start:]
    if len(body) % 2:
        body, notes = body[:-1], notes + ["trailing unanswered human message trimmed"]
    for i, turn in enumerate(body):
        if turn["from"] != _ROLES[i % 2]:
            raise ValueError(f"{where}.conversations[{start + i}].from: expected {_ROLES[i % 2]!r} "
                             f"(roles must alternate human, gpt)")
    if not body:
        raise ValueError(f"{where}.conversations: no human/gpt pair")
    pairs = [(body[i]["value"], body[i + 1]["value"]) for i in range(0, len(body), 2)]
    return pairs, "; ".join(notes) or None


def encode_conversation(encode: Callable[[str], list[int]], template: ChatTemplate,
                        turns: Sequence[tuple[str, str]], bos_id: int, eos_id: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of a whole conversation, before truncation and padding.

    Each template segment is tokenized on its own (MindFormers tokenizes each round on its own and
    masks its instruction part), BOS first; prompt segments get -100 labels.

    Returns:
        ``(input_ids, labels)``, lists of int of equal length.
    """
    ids, labels = [bos_id], [IGNORE_INDEX]
    for text, trained in template.segments(turns):
        seg = [eos_id] if text is EOS else encode(text)
        ids += seg
        labels += seg if trained else [IGNORE_INDEX] * len(seg)
    return ids, labels


def fit_length(ids: list[int], labels: list[int], total: int) -> tuple[list[int], list[int], str, str | None]:
    """Cut a sample to ``total`` = seq_length + 1 tokens.

    Returns:
        ``(ids, labels, status, reason)``: status ``"ok"``, ``"truncated"`` (some answer tokens kept)
        or ``"dropped"`` (no answer token within ``total``); reason is None for ``"ok"``.
    """
    n = len(ids)
    if n <= total:
        return ids, labels, "ok", None
    ids, labels = ids[:total], labels[:total]
    if all(label == IGNORE_INDEX for label in labels):
        return ids, labels, "dropped", f"prompt fills all seq_length+1={total} tokens of {n}; no answer token left"
    return ids, labels, "truncated", f"{n} tokens cut to seq_length+1={total}"


def first_fit_decreasing(items: Sequence, total: int, size: Callable = len) -> list[list]:
    """Group items so each group's ``size`` sum is at most ``total``, in few groups.

    Longest first, each into the first group with room (first-fit decreasing: at most 11/9 of the
    optimal count plus one). The Trainer shuffles records, so the samples' order is not kept; next-fit
    in order left 25% of a seq-256 window as padding on the default job's samples.

    Args:
        items: samples, each of ``size`` at most ``total`` (a larger one forms a group alone).
        size: an item's token count.

    Returns:
        Lists of items, one list per record, items of a list in input order.
    """
    order = sorted(range(len(items)), key=lambda i: -size(items[i]))
    groups: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = size(items[i])
        slot = next((g for g, free in enumerate(room) if free >= n), None)
        if slot is None:
            groups.append([i])
            room.append(total - n)
        else:
            groups[slot].append(i)
            room[slot] -= n
    return [[items[i] for i in sorted(g)] for g in sorted(groups)]


def pad_records(groups: Sequence[Sequence[tuple[Sequence[int], Sequence[int]]]], total: int,
                pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate each group's samples into one record padded to ``total``.

    Packed samples keep their own BOS and masks, so no sample's prompt is trained on; attention is
    kept inside each sample by ``research.llama3.records.mindrecord.packed_columns``, written beside these.

    Args:
        groups: per record, its ``(ids, labels)`` samples (total length at most ``total``).

    Returns:
        ``input_ids`` and ``labels``, int32 [len(groups), total].
    """
    ids = np.full((len(groups), total), pad_id, dtype=np.int32)
    labels = np.full((len(groups), total), IGNORE_INDEX, dtype=np.int32)
    for row, parts in enumerate(groups):
        pos = 0
        for part_ids, part_labels in parts:
            end = pos + len(part_ids)
            ids[row, pos:end], labels[row, pos:end] = part_ids, part_labels
            pos = end
    return ids, labels
