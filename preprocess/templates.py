"""Prompt templates shared by MindRecord conversion (training) and generation (evaluation).

The same template object renders the prompt at training time and at prediction time, so the
model is always asked in the format it was trained on: ``render_prompt(q)`` is exactly the text of
a first turn's prompt segment in ``segments``.

Registered templates (``get_template``):
- ``vicuna_v1.1``: fastchat's vicuna v1.1 conversation as MindFormers r1.1
  ``research/llama3/llama_preprocess.py`` (qa mode) builds it: ``"{system} USER: {q} ASSISTANT: {a}</s>"``
  per round, later rounds without the system; its ``</s>`` round separator becomes the tokenizer's EOS
  id (the script splits rounds on it and closes each with EOS).
- ``vicuna_nosys``: the vicuna v1.1 frame without its system prompt, ``"USER: {q} ASSISTANT: {a}</s>"``:
  the system sentence is 29 of the 67 SmolLM2 tokens of a typical contest prompt, paid in every
  training sample and every prediction; the roles alone keep the frame. The default job's template.
- ``alpaca``: the contest's ``data_converter.py`` wraps each problem in Stanford Alpaca's
  no-input instruction prompt before the records go through the vicuna conversation above.
- ``llama3_chat``: Meta's Llama 3 chat format (header and ``<|eot_id|>`` special tokens).
- ``chatml``: Qwen2/Qwen2.5's ChatML (``<|im_start|>role\n...<|im_end|>\n``), with the system prompt
  that Qwen2-Instruct's ``tokenizer_config.json`` chat template adds when none is given; the
  ``<|im_end|>`` closing each answer (Qwen2-Instruct's EOS) and its newline are trained on.
- ``logic_reflection``: vicuna frame with a system prompt for logic questions answered in
  ``<thinking>``/``<reflection>``/``<output>`` (the record texts come from ``preprocess.logic``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A segment's text, or EOS for "the tokenizer's end-of-sequence id".
EOS = None


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template: how a conversation becomes prompt and answer texts.

    A round renders as ``system_format`` (first round only, when ``system`` is set), then
    ``user_prefix + user message + user_suffix + assistant_prefix`` (the prompt, never trained on),
    then ``answer_prefix + answer`` and ``turn_end`` (trained on).

    Attributes:
        name: registry key (e.g. ``vicuna_v1.1``).
        system: system prompt ("" for none).
        system_format: how the system prompt is written; ``{system}`` is replaced.
        user_prefix / user_suffix: text around the user's message.
        assistant_prefix: text that ends the prompt; generation starts right after it.
        answer_prefix: text put before the assistant's answer in training records.
        turn_end: text closing each assistant turn, or ``EOS`` (None) for the tokenizer's EOS id.
        user_wrapper: wraps each user message; ``{problem}`` is replaced (alpaca's instruction prompt).
        special_tokens: markers the tokenizer must have as single special tokens.
    """

    name: str
    system: str
    user_prefix: str
    assistant_prefix: str
    answer_prefix: str = " "
    system_format: str = "{system} "
    user_suffix: str = " "
    turn_end: str | None = EOS
    user_wrapper: str = "{problem}"
    special_tokens: tuple[str, ...] = ()

    def turn_prompt(self, question: str, first: bool = True) -> str:
        """Prompt text of one round (with the system prompt when ``first``); no BOS."""
        head = self.system_format.replace("{system}", self.system) if first and self.system else ""
        message = self.user_wrapper.replace("{problem}", question)
        return f"{head}{self.user_prefix}{message}{self.user_suffix}{self.assistant_prefix}"

    def render_prompt(self, question: str) -> str:
        """Return the prompt text for ``question`` (no BOS; the tokenizer adds special tokens)."""
        return self.turn_prompt(question, first=True)

    def render_answer(self, answer: str) -> str:
        """Return the assistant's text as it follows the prompt in a training record (no turn end)."""
        return f"{self.answer_prefix}{answer}"

    def segments(self, turns: Sequence[tuple[str, str]]) -> list[tuple[str | None, bool]]:
        """Split a conversation into ``(text or EOS, trained)`` segments, in order.

        Args:
            turns: ``(user message, assistant answer)`` pairs, at least one.

        Returns:
            Per round: ``(prompt, False)``, ``(answer, True)``, ``(turn_end, True)``. Each segment is
            tokenized on its own, as MindFormers tokenizes each round on its own; BOS is not included.

        Raises:
            ValueError: no turns.
        """
        if not turns:
            raise ValueError("a conversation needs at least one (question, answer) turn")
        out = []
        for i, (question, answer) in enumerate(turns):
            out += [(self.turn_prompt(question, first=i == 0), False), (self.render_answer(answer), True),
                    (self.turn_end, True)]
        return out


# fastchat's conv_vicuna_v1_1 (system, roles USER/ASSISTANT, sep " ", sep2 "</s>") as
# MindFormers r1.1 research/llama3/conversation.py defines it.
VICUNA_V11 = ChatTemplate(
    name="vicuna_v1.1",
    system=("A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions."),
    user_prefix="USER: ",
    assistant_prefix="ASSISTANT:",
)

VICUNA_NOSYS = ChatTemplate(
    name="vicuna_nosys",
    system="",
    user_prefix=VICUNA_V11.user_prefix,
    assistant_prefix=VICUNA_V11.assistant_prefix,
)

# Stanford Alpaca's prompt_no_input, as the contest's data_converter.py puts it into the human turn.
ALPACA = ChatTemplate(
    name="alpaca",
    system=VICUNA_V11.system,
    user_prefix=VICUNA_V11.user_prefix,
    assistant_prefix=VICUNA_V11.assistant_prefix,
    user_wrapper=("Below is an instruction that describes a task. "
                  "Write a response that appropriately completes the request.\n\n"
                  "### Instruction:\n{problem}\n\n### Response:"),
)

# Meta's Llama 3 instruct format (llama3 repo, tokenizer.py ChatFormat).
LLAMA3_CHAT = ChatTemplate(
    name="llama3_chat",
    system="",
    system_format="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
    user_prefix="<|start_header_id|>user<|end_header_id|>\n\n",
    user_suffix="<|eot_id|>",
    assistant_prefix="<|start_header_id|>assistant<|end_header_id|>\n\n",
    answer_prefix="",
    turn_end="<|eot_id|>",
    special_tokens=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
)

# Qwen2-Instruct's chat_template (tokenizer_config.json): every message is
# "<|im_start|>{role}\n{content}<|im_end|>\n", generation starts after "<|im_start|>assistant\n".
CHATML = ChatTemplate(
    name="chatml",
    system="You are a helpful assistant.",
    system_format="<|im_start|>system\n{system}<|im_end|>\n",
    user_prefix="<|im_start|>user\n",
    user_suffix="<|im_end|>\n",
    assistant_prefix="<|im_start|>assistant\n",
    answer_prefix="",
    turn_end="<|im_end|>\n",
    special_tokens=("<|im_start|>", "<|im_end|>"),
)

LOGIC_REFLECTION = ChatTemplate(
    name="logic_reflection",
    system=("A chat between a user and an assistant that solves logical reasoning questions. "
            "The assistant reasons step by step inside <thinking></thinking>, checks that reasoning "
            "inside <reflection></reflection>, and gives only the final option letter inside <output></output>."),
    user_prefix=VICUNA_V11.user_prefix,
    assistant_prefix=VICUNA_V11.assistant_prefix,
)

TEMPLATES = {t.name: t for t in (VICUNA_V11, VICUNA_NOSYS, ALPACA, LLAMA3_CHAT, CHATML, LOGIC_REFLECTION)}
# The template of training records and evaluation prompts when none is named (MindFormers r1.1's qa mode);
# the run manifest records the one a run used, and evaluation reads it from there.
DEFAULT_TEMPLATE = VICUNA_V11.name


def get_template(name: str) -> ChatTemplate:
    """Return the template registered as ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown template {name!r}; known: {sorted(TEMPLATES)}") from None
