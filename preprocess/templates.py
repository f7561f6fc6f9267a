"""Prompt templates shared by MindRecord conversion (training) and generation (evaluation).

The same template object renders the prompt at training time and at prediction time, so the
model is always asked in the format it was trained on.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatTemplate:
    """A single-turn chat template.

    Attributes:
        name: registry key (e.g. ``vicuna_v1.1``).
        system: system prompt placed before the first turn ("" for none).
        user_prefix: text before the user's message.
        assistant_prefix: text that ends the prompt; generation starts right after it.
        answer_prefix: text put before the assistant's answer in training records.
    """

    name: str
    system: str
    user_prefix: str
    assistant_prefix: str
    answer_prefix: str = " "

    def render_prompt(self, question: str) -> str:
        """Return the prompt text for ``question`` (no BOS; the tokenizer adds special tokens)."""
        head = f"{self.system} " if self.system else ""
        return f"{head}{self.user_prefix}{question} {self.assistant_prefix}"

    def render_answer(self, answer: str) -> str:
        """Return the assistant's text as it follows the prompt in a training record (no EOS)."""
        return f"{self.answer_prefix}{answer}"


# fastchat's vicuna_v1.1 conversation, as MindFormers r1.1 research/llama3/llama_preprocess.py
# (qa mode) uses it for the contest's records: "SYSTEM USER: q ASSISTANT: a".
VICUNA_V11 = ChatTemplate(
    name="vicuna_v1.1",
    system=("A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions."),
    user_prefix="USER: ",
    assistant_prefix="ASSISTANT:",
)

TEMPLATES = {t.name: t for t in (VICUNA_V11,)}


def get_template(name: str) -> ChatTemplate:
    """Return the template registered as ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown template {name!r}; known: {sorted(TEMPLATES)}") from None
