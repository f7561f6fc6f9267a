"""Llama 3 tokenizer (tiktoken over tokenizer.model): hand-computed ids on a tiny BPE file, and id
parity with HF ``tokenizers`` loading Meta's tokenizer.json on real math text and chat text."""
import base64
import json
from pathlib import Path

import pytest

from preprocess.templates import get_template
from research.llama3.tokenizers.llama3_tokenizer import Llama3Encoder, llama3_special_tokens, load_llama3_ranks
from research.llama3.tokenizers.tokenizer import build_tokenizer, tokenizer_from_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def write_tiny_model(path: Path) -> Path:
    """A tiktoken BPE file: the 256 single bytes at rank = byte value, then "ab" (256) and "abc" (257)."""
    tokens = [bytes([b]) for b in range(256)] + [b"ab", b"abc"]
    path.write_bytes(b"".join(base64.b64encode(t) + b" %d\n" % r for r, t in enumerate(tokens)))
    return path


@pytest.fixture
def tiny_model(tmp_path):
    return write_tiny_model(tmp_path / "tokenizer.model")


def test_tiny_file_hand_computed_ids(tiny_model):
    enc = Llama3Encoder(tiny_model)
    # pre-tokens "abc" | " ab" | "!" : "abc" merges fully; " ab" is the space byte then "ab".
    assert enc("abc ab!") == [257, 32, 256, 33]
    # special tokens follow the 258 ranks in Meta's order: eot is the 10th.
    assert enc("<|eot_id|>x") == [258 + 9, ord("x")]
    assert enc("<|begin_of_text|><|start_header_id|>") == [258, 264]
    # NFC first, as MindFormers' Llama3Tokenizer.tokenize does: e + combining acute -> U+00E9 = C3 A9.
    assert enc("e\u0301") == [0xC3, 0xA9]
    specials = llama3_special_tokens(128000)
    assert len(specials) == 256 and specials["<|reserved_special_token_250|>"] == 128255
    assert specials["<|reserved_special_token_0|>"] == 128002 and specials["<|eot_id|>"] == 128009


def test_malformed_rank_line_names_file_and_line(tmp_path):
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(base64.b64encode(b"a") + b" 0\nnot-base64!! 1\n")
    with pytest.raises(ValueError, match=r"tokenizer.model:2"):
        load_llama3_ranks(bad)
    with pytest.raises(FileNotFoundError):
        load_llama3_ranks(tmp_path / "missing.model")


def test_hf_fallback_without_tokenizer_json(tiny_model):
    """With no tokenizer.json beside the file, .hf is converted from the ranks and agrees with tiktoken."""
    tok = build_tokenizer({"type": "Llama3Tokenizer", "vocab_file": str(tiny_model)})
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (258, 259, 260)
    text = "abc ab! <|eot_id|>abcab"
    assert tok.hf.encode(text, add_special_tokens=False) == tok.encode(text)
    assert tok.hf.encode("ab")[0] == 258  # BOS in front for generation
    assert tok.special_id("<|eot_id|>") == 267 and tok.special_id("abc") is None


def test_llama3_type_needs_a_file():
    with pytest.raises(ValueError, match="vocab_file"):
        build_tokenizer({"type": "Llama3Tokenizer", "vocab_file": ""})
    with pytest.raises(ValueError, match="Llama3Tokenizer"):
        build_tokenizer({"type": "SentencePiece"})


@pytest.fixture(scope="module")
def real(llama3_tokenizer_dir):
    from tokenizers import Tokenizer as HFTokenizer

    return Llama3Encoder(llama3_tokenizer_dir / "tokenizer.model"), HFTokenizer.from_file(str(llama3_tokenizer_dir / "tokenizer.json"))


def _texts(shared_data, n_math=600, n_gsm=200):
    rows = [json.loads(line) for line in (shared_data / "ascend2024_math" / "sample_dev.jsonl").open(encoding="utf-8")]
    gsm = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").open(encoding="utf-8")][:n_gsm]
    return [r["problem"] for r in rows[:n_math]] + [r["solution"] for r in rows[:n_math]] + \
        [g["question"] for g in gsm] + [g["answer"] for g in gsm]


def test_real_ids_match_hf_tokenizer_json(real, shared_data):
    enc, hf = real
    texts = _texts(shared_data)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in texts[0] + texts[1])  # Chinese math is in the mix
    mismatches = [t for t in texts if enc(t) != hf.encode(t, add_special_tokens=False).ids]
    assert not mismatches, mismatches[:3]


def test_real_chat_template_special_tokens(real, shared_data):
    enc, hf = real
    tpl = get_template("llama3_chat")
    q = json.loads((shared_data / "ascend2024_math" / "sample_dev.jsonl").open(encoding="utf-8").readline())["problem"]
    text = tpl.render_prompt(q) + "答案是 42<|eot_id|>"
    ids = enc(text)
    assert ids == hf.encode(text, add_special_tokens=False).ids
    assert ids[:1] == [128006] and ids.count(128009) == 2 and ids.count(128007) == 2
    # vicuna's "</s>" is plain text for Llama 3, not a special token
    assert 128001 not in enc("ASSISTANT: 2</s>")


def test_tokenizer_from_llama3_yaml(llama3_tokenizer_dir, tmp_path):
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "llama3_8b" / "finetune_lora_910b_1p.yaml").read_text())
    assert cfg["processor"]["tokenizer"]["type"] == "Llama3Tokenizer"
    cfg["processor"]["tokenizer"]["vocab_file"] = str(llama3_tokenizer_dir / "tokenizer.model")
    path = tmp_path / "llama3.yaml"
    path.write_text(yaml.safe_dump(cfg))
    tok = tokenizer_from_config(str(path))
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (128000, 128001, 128002)
    text = "计算 3.5 * 4 等于多少？ 3.5 * 4 = 14.0"
    ids = tok.hf(text)["input_ids"]
    assert ids[0] == 128000 and ids[1:] == tok.encode(text)
    assert tok.hf.decode(ids, skip_special_tokens=True) == text
