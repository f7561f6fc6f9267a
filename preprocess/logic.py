"""Tianchi logical-reasoning items: one record per sub-question, and their two training styles.

Source format (``/work/shared/data/README.md``, shiqiyio/logical-reasoning ``dataset/``):
``{"id", "problem", "questions": [{"question", "options": [...], "answer": "A"}]}``; test
files have no ``answer``. Options are lettered A, B, C, ... in list order.

Styles of the user message / assistant text (``STYLES``):
    plain     question with lettered options; answer ``答案：X``
    thinking  the same question plus an instruction to reason in ``<thinking>``, check in
              ``<reflection>`` and answer in ``<output>``, the template the seed teams of the
              Tianchi round used; the assistant text fills the three tags.
The chat template around these texts (system prompt, role markers) is ``preprocess.templates``'.
"""
from __future__ import annotations

import re
import string
import unicodedata

STYLES = ("plain", "thinking")
_LETTERS = string.ascii_uppercase

THINKING_INSTRUCTION = (
    "请先在 <thinking> 标签中逐步推理，再在 <reflection> 标签中检查推理是否有误，"
    "最后在 <output> 标签中给出答案（只写选项字母）。"
)
# Answer-letter patterns by tier (see answer_letter); text is NFKC-normalised first, so full-width
# letters and punctuation (Ａ, ：, （) match as their ASCII forms.
_LETTER = r"\s*(?:\(\s*)?([A-Za-z])(?![A-Za-z])"
_OUTPUT_TAG = re.compile(r"<output>" + _LETTER)
# "选" is choosing, "不选" rejecting and "选项" naming an option; an English lowercase letter after
# "answer is" could be the article "a", so English statements count capitals only.
_STATED = re.compile(r"答案(?:是|为|应(?:该)?是)?\s*:?\s*(?:选项|选)?" + _LETTER
                     + r"|(?<!不)选(?:择)?(?!项)\s*:?" + _LETTER
                     + r"|(?i:answer)\s*(?:(?i:is)\s*:?|:)\s*(?:(?i:option)\s*)?(?:\(\s*)?([A-Z])(?![A-Za-z])")
_BARE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")
# The English pronoun ("I think", "I'm") is a word, not option I.
_PRONOUN_I = re.compile(r"I(?:\s+[a-z]|')")
# An option line as the prompt lists them (``A. text``; also ``(A) text``, ``A、text``, ``A: text``).
_OPTION_LINE = re.compile(r"^[ \t]*\(?([A-Z])\s*[.、:)]\s*\S.*$", re.M)


def tianchi_records(obj: dict) -> list[dict]:
    """Split one Tianchi problem into sub-question records.

    Returns:
        One dict per question, in order: ``{"problem": user message (plain style),
        "solution": answer letter or "", "logic": {"problem_id", "question_index" (0-based),
        "context", "question", "options"}}``.

    Raises:
        ValueError: a missing/empty/mistyped field, named with its question index.
    """
    context = obj.get("problem")
    if not isinstance(context, str) or not context.strip():
        raise ValueError("field 'problem' is missing, empty or not a string")
    pid = obj.get("id", "")
    if not isinstance(pid, str):
        raise ValueError(f"field 'id' is not a string (got {type(pid).__name__})")
    questions = obj.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ValueError("field 'questions' is not a non-empty list")
    records = []
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        if not isinstance(q, dict):
            raise ValueError(f"{where} is not an object")
        question, options = q.get("question"), q.get("options")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}.question is missing, empty or not a string")
        if (not isinstance(options, list) or len(options) < 2 or len(options) > len(_LETTERS)
                or not all(isinstance(o, str) for o in options)):
            raise ValueError(f"{where}.options must be a list of 2 to 26 strings")
        answer = q.get("answer", "")
        if not isinstance(answer, str):
            raise ValueError(f"{where}.answer is not a string")
        answer = answer.strip()
        if answer and answer not in _LETTERS[: len(options)]:
            raise ValueError(f"{where}.answer {answer!r} is not one of the option letters")
        meta = {"problem_id": pid, "question_index": i, "context": context, "question": question,
                "options": options}
        records.append({"problem": user_message(meta, "plain"), "solution": answer, "logic": meta})
    return records


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown logic style {style!r}; expected one of {STYLES}")


def user_message(meta: dict, style: str = "plain") -> str:
    """Return the user's message for a sub-question (``meta`` as in :func:`tianchi_records`).

    Options are listed one per line as ``A. text`` so ``classify`` sees them at line starts.

    Raises:
        ValueError: unknown ``style``.
    """
    _check_style(style)
    options = "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(meta["options"]))
    text = f"{meta['context'].strip()}\n\n{meta['question'].strip()}\n{options}"
    return text if style == "plain" else f"{text}\n\n{THINKING_INSTRUCTION}"


def assistant_message(meta: dict, answer: str, style: str = "plain", rationale: str = "") -> str:
    """Return the training target for a sub-question whose correct option is ``answer``.

    ``rationale`` (e.g. from a teacher model) becomes the thinking part; without one the
    thinking part names the chosen option's text, so the target never argues for another option.

    Raises:
        ValueError: unknown ``style`` or ``answer`` not an option letter.
    """
    _check_style(style)
    index = _LETTERS.find(answer) if len(answer) == 1 else -1
    if not 0 <= index < len(meta["options"]):
        raise ValueError(f"answer {answer!r} is not one of the option letters")
    if style == "plain":
        return f"答案：{answer}" if not rationale else f"{rationale.strip()}\n答案：{answer}"
    option_text = meta["options"][index]
    thinking = rationale.strip() or f"逐一对照题目给出的条件检验各选项，符合条件的是选项 {answer}：{option_text}。"
    reflection = f"复核：选项 {answer}（{option_text}）与题目条件一致，其余选项不满足条件。"
    return (f"<thinking>\n{thinking}\n</thinking>\n<reflection>\n{reflection}\n</reflection>\n"
            f"<output>\n{answer}\n</output>")


def answer_letter(text: str | None, n_options: int = 26) -> str | None:
    """Return the option letter (``"A"``..) a model's reply chooses, or ``None``.

    Three tiers, the first tier with a match deciding and its LAST match taken:

    1. ``<output>A`` (the thinking style's answer tag, so a letter named while reasoning does not
       override it);
    2. a stated answer: ``答案是：A`` (also ``答案：A``, ``答案为 A``, ``答案是(A)``: the plain
       style's target and the Tianchi baseline prompt's format), ``选B``/``选择 B`` (not ``不选``
       or ``选项``), ``The answer is B``;
    3. the last standalone capital letter (the pronoun in ``I think`` is skipped), outside options
       the reply re-lists: option lines (``A. text``) with two or more different letters are the
       question's options repeated, not a choice, so a reply that only repeats them has no answer
       (a single option line, ``B. text``, is the reply choosing B).

    Lowercase (``答案是：c``) and full-width (``答案是：Ａ``) letters count in tiers 1-2. When the
    deciding letter is not among the first ``n_options`` letters the reply has no answer
    (``None``): a stated answer that is not an option is wrong, and falling back to a letter from
    the reasoning would pick an option the reply rejected (``A和B都不对，答案是D``). Used for teacher
    replies and for evaluation.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    for pattern in (_OUTPUT_TAG, _STATED):
        matches = list(pattern.finditer(text))
        if matches:
            return _valid(next(g for g in matches[-1].groups() if g), n_options)
    listed = list(_OPTION_LINE.finditer(text))
    if len({m.group(1) for m in listed}) < 2:
        listed = []
    bare = [m for m in _BARE.finditer(text) if not _PRONOUN_I.match(text, m.start())
            and not any(o.start() <= m.start() < o.end() for o in listed)]
    return _valid(bare[-1].group(1), n_options) if bare else None


def _valid(letter: str, n_options: int) -> str | None:
    letter = letter.upper()
    return letter if letter in _LETTERS[:n_options] else None
