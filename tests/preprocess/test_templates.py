"""Chat templates: exact texts from their sources, and one object for training and prediction."""
import pytest

from preprocess.templates import EOS, TEMPLATES, get_template

pytestmark = pytest.mark.unit

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def test_vicuna_matches_mindformers_conversation():
    # MindFormers r1.1 conversation.py, ADD_COLON_TWO with sep " " and sep2 "</s>": the script splits
    # rounds on "</s>" and closes each with EOS, so round 2 starts right at "USER:".
    tpl = get_template("vicuna_v1.1")
    assert tpl.render_prompt("1+1=?") == f"{SYSTEM} USER: 1+1=? ASSISTANT:"
    assert tpl.segments([("1+1=?", "2"), ("再加 3 呢？", "5")]) == [
        (f"{SYSTEM} USER: 1+1=? ASSISTANT:", False), (" 2", True), (EOS, True),
        ("USER: 再加 3 呢？ ASSISTANT:", False), (" 5", True), (EOS, True)]


def test_vicuna_nosys_is_the_vicuna_frame_without_the_system_sentence():
    tpl = get_template("vicuna_nosys")
    assert tpl.render_prompt("1+1=?") == "USER: 1+1=? ASSISTANT:"
    assert tpl.segments([("1+1=?", "2"), ("再加 3 呢？", "5")]) == [
        ("USER: 1+1=? ASSISTANT:", False), (" 2", True), (EOS, True),
        ("USER: 再加 3 呢？ ASSISTANT:", False), (" 5", True), (EOS, True)]


def test_alpaca_wraps_the_problem_like_the_contest_converter():
    tpl = get_template("alpaca")
    # braces in a problem are data, not format fields
    assert tpl.render_prompt("solve {x}: x+1=2") == (
        f"{SYSTEM} USER: Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nsolve {x}: x+1=2\n\n### Response: ASSISTANT:")


def test_llama3_chat_uses_header_and_eot_tokens():
    tpl = get_template("llama3_chat")
    assert tpl.segments([("7*6", "42")]) == [
        ("<|start_header_id|>user<|end_header_id|>\n\n7*6<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n", False), ("42", True), ("<|eot_id|>", True)]
    assert set(tpl.special_tokens) == {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}


def test_chatml_matches_qwen2_instruct_chat_template():
    tpl = get_template("chatml")
    # Qwen2-Instruct's template with its default system prompt, rendered with add_generation_prompt=True.
    assert tpl.render_prompt("7*6") == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                                        "<|im_start|>user\n7*6<|im_end|>\n<|im_start|>assistant\n")
    segments = tpl.segments([("7*6", "42"), ("+1", "43")])
    assert segments[1:] == [("42", True), ("<|im_end|>\n", True),
                            ("<|im_start|>user\n+1<|im_end|>\n<|im_start|>assistant\n", False), ("43", True),
                            ("<|im_end|>\n", True)]
    assert "".join(text for text, _ in segments) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n7*6<|im_end|>\n"
        "<|im_start|>assistant\n42<|im_end|>\n<|im_start|>user\n+1<|im_end|>\n<|im_start|>assistant\n43<|im_end|>\n")
    assert set(tpl.special_tokens) == {"<|im_start|>", "<|im_end|>"}


def test_logic_reflection_prompt_names_the_three_tags():
    tpl = get_template("logic_reflection")
    prompt = tpl.render_prompt("甲乙丙谁说了真话？ A. 甲 B. 乙")
    assert all(tag in prompt for tag in ("<thinking>", "<reflection>", "<output>"))
    assert prompt.endswith("USER: 甲乙丙谁说了真话？ A. 甲 B. 乙 ASSISTANT:")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_prediction_prompt_is_the_training_prompt(name):
    tpl = get_template(name)
    assert tpl.segments([("q", "a")])[0] == (tpl.render_prompt("q"), False)


def test_unknown_template_lists_known_ones():
    with pytest.raises(KeyError, match="alpaca"):
        get_template("chatml_v2")
    with pytest.raises(ValueError):
        get_template("vicuna_v1.1").segments([])
