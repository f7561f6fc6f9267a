"""preprocess.logic: Tianchi sub-question records and the plain / thinking training styles."""
import json

import pytest

from preprocess.classify import classify
from preprocess.cot import synthesize
from preprocess.logic import (STYLES, THINKING_INSTRUCTION, answer_letter, assistant_message,
                              tianchi_records, user_message)

pytestmark = pytest.mark.unit

PROBLEM = {
    "id": "demo_001",
    "problem": "有三个人：甲、乙、丙。已知甲比乙高，乙比丙高。\n\n根据以上信息，回答以下选择题：",
    "questions": [
        {"question": "选择题 1：\n谁最高？", "options": ["甲", "乙", "丙"], "answer": "A"},
        {"question": "选择题 2：\n谁最矮？", "options": ["甲", "乙", "丙"], "answer": "C"},
    ],
}


def test_one_record_per_question_in_order():
    recs = tianchi_records(PROBLEM)
    assert [(r["logic"]["problem_id"], r["logic"]["question_index"], r["solution"]) for r in recs] == [
        ("demo_001", 0, "A"), ("demo_001", 1, "C")]
    assert recs[1]["problem"] == (
        "有三个人：甲、乙、丙。已知甲比乙高，乙比丙高。\n\n根据以上信息，回答以下选择题：\n\n"
        "选择题 2：\n谁最矮？\nA. 甲\nB. 乙\nC. 丙")
    for r in recs:  # the flattened record classifies and verifies as logic
        assert classify(r["problem"], r["solution"]) == "logic"
        assert synthesize(r["problem"], r["solution"], "logic").verified


def test_plain_style():
    meta = tianchi_records(PROBLEM)[0]["logic"]
    assert user_message(meta, "plain") == tianchi_records(PROBLEM)[0]["problem"]
    assert assistant_message(meta, "A", "plain") == "答案：A"
    assert assistant_message(meta, "A", "plain", "甲比乙高且乙比丙高。") == "甲比乙高且乙比丙高。\n答案：A"


def test_thinking_style_has_the_three_tags_in_order():
    meta = tianchi_records(PROBLEM)[1]["logic"]
    prompt = user_message(meta, "thinking")
    assert prompt.startswith(user_message(meta, "plain")) and prompt.endswith(THINKING_INSTRUCTION)
    text = assistant_message(meta, "C", "thinking", rationale="丙比乙矮，乙比甲矮。")
    opens = [text.index(t) for t in ("<thinking>", "</thinking>", "<reflection>", "</reflection>",
                                     "<output>", "</output>")]
    assert opens == sorted(opens)
    assert "丙比乙矮，乙比甲矮。" in text and text.endswith("<output>\nC\n</output>")
    assert answer_letter(text) == "C"
    fallback = assistant_message(meta, "C", "thinking")
    assert "选项 C：丙" in fallback and answer_letter(fallback) == "C"


def test_answer_letter():
    assert answer_letter("I think B... <output>答案是 D</output>") == "D"
    assert answer_letter("选 A 还是 B？最终选 B。") == "B"
    assert answer_letter("no option here") is None
    assert answer_letter("<output>A</output> then <output>C</output>") == "C"


@pytest.mark.parametrize("text, n_options, expected", [
    ("答案是：c", 4, "C"),                       # lowercase after the answer marker
    ("我认为应该选b", 4, "B"),                   # lowercase after 选
    ("答案是：Ａ", 4, "A"),                      # full-width letter
    ("答案为（ｄ）", 4, "D"),                    # full-width parentheses and letter
    ("<output>\nb\n</output>", 2, "B"),         # lowercase in the answer tag
    ("A和B都不对，答案是D", 2, None),            # stated answer not an option: no answer, not B
    ("The answer is B, I think.", 9, "B"),      # not the pronoun I (a valid option with nine)
    ("A is wrong, I think", 9, "A"),            # bare tier skips the pronoun
    ("<output>E</output> 所以 B", 4, None),      # the tag decides even when invalid
    ("不选A，选B", 4, "B"),                      # 不选 rejects
    ("选项A不对，所以选项B", 4, "B"),            # 选项 names an option, not a choice: bare tier
    ("我选 a 吗？答案：C", 3, "C"),               # last stated answer wins
    ("the answer is a mystery", 4, None),       # the article a is not option A
    ("选择题 1 的答案是 b", 2, "B"),
    # Options the reply re-lists are not its choice: the letter after them is, or none.
    ("A. 甲最高\nB. 乙最高\nC. 丙最高\n我认为是 A", 3, "A"),
    ("题目的选项：\nA. 甲最高\nB. 乙最高\nC. 丙最高", 3, None),
    ("(A) 甲\n(B) 乙\n(C) 丙和D", 4, None),   # a capital inside a re-listed option is not chosen
    ("B. 乙最高", 3, "B"),                       # one option line is the reply choosing it
])
def test_answer_letter_cases_widths_and_invalid_statements(text, n_options, expected):
    assert answer_letter(text, n_options) == expected


def test_errors():
    meta = tianchi_records(PROBLEM)[0]["logic"]
    with pytest.raises(ValueError, match="style"):
        user_message(meta, "fancy")
    with pytest.raises(ValueError, match="option letters"):
        assistant_message(meta, "D", "plain")
    with pytest.raises(ValueError, match="questions"):
        tianchi_records({"id": "x", "problem": "p", "questions": "A"})
    assert STYLES == ("plain", "thinking")


def test_real_train_file_every_answer_renders(shared_file):
    path = shared_file("tianchi_logic/round1_train_data.jsonl")
    n = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        for rec in tianchi_records(json.loads(line)):
            for style in STYLES:
                assert answer_letter(assistant_message(rec["logic"], rec["solution"], style)) == rec["solution"]
            assert classify(rec["problem"], rec["solution"]) == "logic"
            n += 1
    assert n == 1421
