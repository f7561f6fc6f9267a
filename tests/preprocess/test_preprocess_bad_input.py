"""Bad input for the preprocess readers and pipeline (issue 16, items 3-7) and a corpus of every
reader format x every kind of damage x every file layout, one bad case per file between two good
records. Invariant for each file: the run does not crash, each good record is kept exactly once,
the bad one is in rejected.jsonl with its file, line and a reason, and nothing unverified reaches
conversations.json."""
import json
from pathlib import Path

import pytest

from preprocess.config import PreprocessConfig
from preprocess.pipeline import run
from preprocess.readers import read_records

pytestmark = pytest.mark.unit

# Near-duplicate removal would merge the corpus's look-alike good records; it is not under test here.
CONFIG = PreprocessConfig(near_dup_threshold=None, workers=1)


def _jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _run(paths, out, **kw):
    report = run([str(p) for p in paths], out, progress=False, config=CONFIG, **kw)
    return report, _jsonl(out / "items.jsonl"), _jsonl(out / "rejected.jsonl"), \
        json.loads((out / "conversations.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- good records per format

def good(fmt: str, n: int) -> dict:
    """A record of ``fmt`` that verifies, unique by ``n``."""
    if fmt == "contest":
        return {"problem": f"计算 {n} + 7 等于多少？", "solution": f"{n} + 7 = {n + 7}"}
    if fmt == "gsm8k":
        return {"question": f"Tom has {n} apples and buys 3 more. How many apples does he have?",
                "answer": f"He has {n}+3 = <<{n}+3={n + 3}>>{n + 3} apples.\n#### {n + 3}"}
    if fmt == "alpaca":
        return {"instruction": f"What is {n} plus 7? Put the answer in a box.", "input": "",
                "output": f"{n} + 7 = \\boxed{{{n + 7}}}"}
    if fmt == "fastchat":
        return {"conversations": [{"from": "human", "value": f"What is {n} plus 7? Box it."},
                                  {"from": "gpt", "value": f"{n} + 7 = \\boxed{{{n + 7}}}"}]}
    return {"id": f"t{n}", "problem": f"题干 {n}：甲乙二人谁先到？",
            "questions": [{"question": "选择题 1：谁？", "options": ["甲", "乙"], "answer": "B"}]}


def ident(rec: dict) -> str:
    """What identifies an input record's item in items.jsonl (see :func:`item_ident`)."""
    for key in ("id", "problem", "question", "instruction"):
        if key in rec:
            return rec[key]
    return rec["conversations"][0]["value"]


def item_ident(item: dict) -> str:
    if "logic" in item:
        return item["logic"]["problem_id"]
    return item["problem"]


# The field whose value a damage replaces, and the one a damage deletes.
MAIN = {"contest": "problem", "gsm8k": "question", "alpaca": "instruction", "fastchat": "conversations",
        "tianchi": "questions"}
ANSWER = {"contest": "solution", "gsm8k": "answer", "alpaca": "output", "fastchat": "conversations",
          "tianchi": "questions"}


def _with(rec, key, raw_value: str) -> str:
    """``rec`` as JSON with ``key``'s value replaced by the raw JSON text ``raw_value``."""
    marker = "\u0001MARK\u0001"
    return json.dumps({**rec, key: marker}).replace(json.dumps(marker), raw_value)


def _bad_bytes(rec) -> bytes:
    text = json.dumps(rec, ensure_ascii=False)
    cut = text.index('": "') + 4
    return text[:cut].encode() + b"\xff\xfe" + text[cut:].encode()


# Each damage turns a good record (and its format) into the text of one bad line.
DAMAGES = {
    "truncated": lambda fmt, rec: json.dumps(rec, ensure_ascii=False)[:25],
    "invalid_utf8": lambda fmt, rec: _bad_bytes(rec),
    # In the field the record needs: decodable when a library raised the recursion limit (MindSpore
    # sets 10000), and then rejected for its type instead.
    "nested_2000": lambda fmt, rec: _with(rec, MAIN[fmt], "[" * 2000 + "]" * 2000),
    "nested_objects_2000": lambda fmt, rec: _with(rec, MAIN[fmt], '{"a":' * 2000 + "1" + "}" * 2000),
    "lone_surrogate": lambda fmt, rec: json.dumps(json.loads(_with(rec, MAIN[fmt], '"x\\ud800y"'))
                                                  if fmt in ("contest", "gsm8k", "alpaca") else
                                                  {**rec, "conversations": [{"from": "human", "value": "\ud800"},
                                                                            {"from": "gpt", "value": "1"}]}
                                                  if fmt == "fastchat" else {**rec, "problem": "题\udc80干"}),
    "huge_integer": lambda fmt, rec: _with(rec, "extra", "9" * 5000),
    "huge_float": lambda fmt, rec: _with(rec, MAIN[fmt], "1e999"),
    "nan_literal": lambda fmt, rec: _with(rec, MAIN[fmt], "NaN"),
    "wrong_type": lambda fmt, rec: _with(rec, MAIN[fmt], "42"),
    "wrong_type_list": lambda fmt, rec: _with(rec, ANSWER[fmt], '["a", 1]'),
    "missing_field": lambda fmt, rec: json.dumps({k: v for k, v in rec.items() if k != ANSWER[fmt]}),
    "empty_field": lambda fmt, rec: _with(rec, MAIN[fmt], '""' if fmt not in ("fastchat", "tianchi") else "[]"),
    "not_an_object": lambda fmt, rec: "[1, 2, 3]",
    "a_string": lambda fmt, rec: '"just text"',
    "trailing_garbage": lambda fmt, rec: json.dumps(rec) + " }{x",
    "bom_mid_file": lambda fmt, rec: "\ufeff" + json.dumps(rec),
    "control_character": lambda fmt, rec: json.dumps(rec).replace(": \"", ": \"\x00", 1),
    "unclosed_brace": lambda fmt, rec: json.dumps(rec)[:-1] + ",",
}
# GSM8K lines that are valid JSON but must not verify (items 3 and 7).
UNVERIFIABLE = {
    "final_nan": "x\n#### nan",
    "final_infinity": "x\n#### Infinity",
    "final_1e309": "x\n#### 1e309",
    "annotation_10_400": "It is <<10**400=81>>81.\n#### 81",
    "annotation_tower": "It is <<((9**1000)**1000)**1000=81>>81.\n#### 81",
    "annotation_5000_digits": f"It is <<{'9' * 5000}=81>>81.\n#### 81",
    "annotation_deep": f"It is <<{'(' * 3000}1{')' * 3000}=1>>1.\n#### 1",
}


def _layout(name: str, g1: str, bad: str | bytes, g2: str) -> tuple[bytes, int, int | None]:
    """File bytes for good, bad, good in layout ``name``; and the bad one's line and array element."""
    bad = bad if isinstance(bad, bytes) else bad.encode("utf-8", "surrogatepass")
    g1, g2 = g1.encode(), g2.encode()
    if name == "jsonl":
        return g1 + b"\n" + bad + b"\n" + g2 + b"\n", 2, None
    if name == "crlf":
        return g1 + b"\r\n" + bad + b"\r\n" + g2 + b"\r\n", 2, None
    if name == "cr_only":
        return g1 + b"\r" + bad + b"\r" + g2 + b"\r", 2, None
    if name == "bom":
        return b"\xef\xbb\xbf" + g1 + b"\n" + bad + b"\n" + g2, 2, None
    if name == "blank_lines":
        return b"\n" + g1 + b"\n \t\n" + bad + b"\n\n" + g2 + b"\n\n", 4, None
    if name == "array":
        return b"[" + g1 + b",\n" + bad + b",\n" + g2 + b"]\n", 2, 1
    if name == "indented_array":  # json.dump(indent=2): the elements' own objects start lines too
        marker = "\u0001BAD\u0001"
        text = json.dumps([json.loads(g1), marker, json.loads(g2)], indent=2).encode()
        at = text.index(json.dumps(marker).encode())
        return text[:at] + bad + text[at + len(json.dumps(marker)):], text.count(b"\n", 0, at) + 1, 1
    if name == "minified_array":
        return b"[" + g1 + b", " + bad + b", " + g2 + b"]", 1, 1
    assert name == "array_then_jsonl"
    return b"[" + g1 + b"]\n" + bad + b"\n" + g2 + b"\n", 2, None


LAYOUTS = ("jsonl", "crlf", "cr_only", "bom", "blank_lines", "array", "indented_array", "minified_array",
           "array_then_jsonl")
FORMAT_NAMES = ("contest", "gsm8k", "alpaca", "fastchat", "tianchi")


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_corpus_every_damage_in_every_layout(fmt, tmp_path):
    cases, n = [], 1000
    damages = {name: (lambda f, r, d=d: d(f, r)) for name, d in DAMAGES.items()}
    if fmt == "gsm8k":
        damages.update({name: (lambda f, r, a=a: json.dumps({**r, "answer": a})) for name, a in UNVERIFIABLE.items()})
    for damage, make in damages.items():
        for layout in LAYOUTS:
            g1, bad, g2 = good(fmt, n), good(fmt, n + 1), good(fmt, n + 2)
            n += 3
            data, line, element = _layout(layout, json.dumps(g1, ensure_ascii=False), make(fmt, bad),
                                          json.dumps(g2, ensure_ascii=False))
            path = tmp_path / "in" / f"{fmt}-{damage}-{layout}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            cases.append((path, [ident(g1), ident(g2)], ident(bad), line, element))
    report, items, rejected, conversations = _run([c[0] for c in cases], tmp_path / "out")

    kept = {}
    for it in items:
        kept.setdefault(item_ident(it), []).append(it)
    by_file = {}
    for r in rejected:
        by_file.setdefault(r["file"], []).append(r)
    verified_ids = {it["id"] for it in items if it["verified"]}
    problems = []
    for path, goods, bad, line, element in cases:
        for g in goods:
            if [it["verified"] for it in kept.get(g, [])] != [True]:
                problems.append(f"{path.name}: good record {g!r} kept {len(kept.get(g, []))} times")
        rej = by_file.get(str(path), [])
        where = [(r["line"], r.get("element"), bool(r["reason"])) for r in rej]
        if where != [(line, element, True)]:
            problems.append(f"{path.name}: rejected {where}, expected [({line}, {element}, True)]")
        if any(it["verified"] for it in kept.get(bad, [])):
            problems.append(f"{path.name}: the bad record was verified")
    assert problems == []
    assert all(c["id"].split("#")[0] in verified_ids for c in conversations)
    assert report["conversations"] == len(conversations) == 2 * len(cases)
    assert report["read"] == report["kept"] + report["duplicates"] + report["rejected"]


# --------------------------------------------------------------------------- item 3: crashes and hangs

def test_item3_nesting_surrogate_and_huge_integer_are_rejected_lines(tmp_path):
    g1, g2 = json.dumps(good("contest", 1)), json.dumps(good("contest", 2))
    # Deeper than any recursion limit in use (MindSpore raises it to 10000), so that json itself refuses it.
    nested = '{"problem": ' + "[" * 100_000 + "]" * 100_000 + ', "solution": "1"}'
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text("\n".join([g1, nested, '{"problem": "x\\ud800", "solution": "1"}',
                                '{"problem": "x", "solution": ' + "1" * 5000 + "}", g2]) + "\n")
    array = tmp_path / "deep.json"
    array.write_text("[\n" + ",\n".join([g1, nested, g2]) + "\n]\n")
    good_recs, rejected = read_records([jsonl, array])
    assert [(g["file"], g["line"]) for g in good_recs] == [(str(jsonl), 1), (str(jsonl), 5),
                                                            (str(array), 2), (str(array), 4)]
    assert [(r["file"], r["line"], r["reason"]) for r in rejected] == [
        (str(jsonl), 2, "not JSON: nested too deeply to decode"),
        (str(jsonl), 3, "lone surrogate U+D800 in problem (invalid UTF-8 or an unpaired \\u escape)"),
        (str(jsonl), 4, "not JSON: Exceeds the limit (4300 digits) for integer string conversion: "
                        "value has 5000 digits"),
        (str(array), 3, "not JSON: nested too deeply to decode"),
    ]


# --------------------------------------------------------------------------- items 4-6: lost records

def test_item4_minified_array_items_get_distinct_ids(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([good("alpaca", i) for i in range(10)]))  # one line
    report, items, rejected, conversations = _run([path], tmp_path / "out", eval_size=2)
    assert [it["id"] for it in items] == [f"m[{i}]" for i in range(10)]
    assert (report["train"], report["eval"], report["conversations"]) == (8, 2, 8)
    assert len({c["id"] for c in conversations}) == 8 and not any("#" in c["id"] for c in conversations)
    assert rejected == []


def test_item5_lines_after_the_array_are_read(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([good("contest", 1)]) + "\n" + json.dumps(good("contest", 2)) + "\ngarbage\n")
    report, items, rejected, _ = _run([path], tmp_path / "out")
    assert (report["read"], report["kept"], report["rejected"]) == (3, 2, 1)
    assert [it["id"] for it in items] == ["a[0]", "a-2"]
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "not JSON: Expecting value at column 1")]


def test_item6_cr_only_pretty_printed_and_system_turn(tmp_path):
    cr = tmp_path / "cr.jsonl"
    cr.write_bytes(b"\r".join(json.dumps(good("contest", i)).encode() for i in range(3)) + b"\r")
    pretty = tmp_path / "pretty.jsonl"
    pretty.write_text("\n".join([json.dumps(good("contest", 10)), json.dumps(good("contest", 11), indent=2),
                                 json.dumps(good("contest", 12))]) + "\n")
    system = tmp_path / "system.json"
    conv = good("fastchat", 20)
    system.write_text(json.dumps([{"conversations": [{"from": "system", "value": "You are a tutor."},
                                                     *conv["conversations"]]}]))
    report, items, rejected, _ = _run([cr, pretty, system], tmp_path / "out")
    assert rejected == []
    assert [it["id"] for it in items] == ["cr-1", "cr-2", "cr-3", "pretty-1", "pretty-2", "pretty-6", "system[0]"]
    assert items[-1]["problem"] == conv["conversations"][0]["value"] and all(it["verified"] for it in items)


# --------------------------------------------------------------------------- item 7: wrong accepts

@pytest.mark.parametrize("final", ["nan", "Infinity", "1e309", "-inf", "9" * 400])
def test_item7_non_finite_gsm8k_answers_are_not_verified(final, tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "How many?", "answer": f"Some.\n#### {final}"}) + "\n"
                    + json.dumps(good("gsm8k", 1)) + "\n")
    report, items, rejected, conversations = _run([path], tmp_path / "out")
    assert [it["verified"] for it in items] == [False, True]
    assert [(r["kind"], r["line"]) for r in rejected] == [("verify_failed", 1)]
    assert "is not a finite number" in rejected[0]["reason"]
    assert [c["id"] for c in conversations] == ["g-2"]


# --------------------------------------------------------------------------- item 8: before the long work

def test_unwritable_output_dir_fails_before_reading_anything(tmp_path):
    from preprocess.atomic import OutputError

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(OutputError, match=f"cannot write into {not_a_dir}"):  # not the missing input
        run([str(tmp_path / "missing.jsonl")], not_a_dir, progress=False, config=CONFIG)
