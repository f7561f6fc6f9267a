"""Pull the final answer out of free-form reference solutions (MATH ``\\boxed{}``, GSM8K ``####``)."""
from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_GSM8K_FINAL = re.compile(r"\n#### *([^\n]+?)\s*$")


def last_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` in ``text``, or None if there is none.

    Braces nest (``\\boxed{\\frac{1}{36}}`` -> ``\\frac{1}{36}``) and escaped braces ``\\{``
    ``\\}`` do not count. The brace-less form ``\\boxed 5`` yields the following token.
    An unbalanced ``\\boxed{`` (truncated text) gives None rather than a partial answer.
    """
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            content = _balanced(text, start)
            if content is not None:
                return content.strip()
        else:
            m = re.match(r"[^\s$]+", text[start:])
            if m:
                return m.group(0).rstrip(".,")
    return None


def boxed_contents(text: str) -> list[str]:
    """Return the stripped contents of every complete ``\\boxed{...}`` / ``\\fbox{...}`` in
    ``text``, in order (brace form only; nesting and escaped braces as in :func:`last_boxed`;
    an unbalanced box, e.g. a generation cut off by ``max_new_tokens``, is skipped)."""
    found = []
    for m in _BOXED.finditer(text):
        start = m.end()
        if start < len(text) and text[start] == "{":
            content = _balanced(text, start)
            if content is not None:
                found.append(content.strip())
    return found


def _balanced(text: str, open_at: int) -> str | None:
    depth = 0
    i = open_at
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped character (\{, \}) never opens or closes a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
        i += 1
    return None


def gsm8k_final(solution: str) -> str | None:
    """Return the answer after GSM8K's final ``#### `` line, thousands separators removed."""
    m = _GSM8K_FINAL.search(solution)
    return m.group(1).replace(",", "").strip() if m else None
