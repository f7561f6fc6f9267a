"""eval.generate (and the CLI's model mode) on a tiny random LlamaForCausalLM."""
import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from eval import math as math_cli
from eval.generate import generate

pytestmark = pytest.mark.unit

WORDS = ("A chat USER: ASSISTANT: 计算 等于 多少 ？ 的 平方根 次方 解 方程 x + - * / = . "
         "0 1 2 3 4 5 6 7 8 9 面积 为 平方厘米").split()
PROMPTS = [
    "USER: 计算 1 + 2 等于 多少 ？ ASSISTANT:",
    "解 方程 x",
    "A chat USER: 计算 9 的 平方根 ？ 计算 7 的 2 次方 ？ ASSISTANT:",
    "7",
    "面积 为",
]
MAX_NEW = 8


def make_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer with BOS added; no pad token (generate must use EOS)."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def make_model(vocab_size: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    # float64 so batched and single-prompt logits cannot differ enough to flip an argmax.
    return LlamaForCausalLM(config).to(torch.float64).eval()


@pytest.fixture(scope="module")
def tiny():
    tokenizer = make_tokenizer()
    return make_model(len(tokenizer)), tokenizer


def reference_greedy(model, tokenizer, prompt, max_new_tokens):
    """Plain greedy loop: full forward pass per step, no cache, no padding."""
    ids = tokenizer(prompt)["input_ids"]
    new, hit_eos = [], False
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([ids + new])).logits[0, -1]
            token = int(logits.argmax())
            if token == tokenizer.eos_token_id:
                hit_eos = True
                break
            new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True), hit_eos


def test_prompts_have_different_lengths(tiny):
    _, tokenizer = tiny
    lengths = [len(tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert len(set(lengths)) == len(PROMPTS) and tokenizer.unk_token_id not in sum(
        (tokenizer(p)["input_ids"] for p in PROMPTS), [])


def test_batched_equals_one_by_one_and_plain_greedy(tiny):
    model, tokenizer = tiny
    batched = generate(model, tokenizer, PROMPTS, MAX_NEW, batch_size=3, show_progress=False)
    single = [generate(model, tokenizer, [p], MAX_NEW, batch_size=1, show_progress=False)[0]
              for p in PROMPTS]
    whole = generate(model, tokenizer, PROMPTS, MAX_NEW, batch_size=len(PROMPTS), show_progress=False)
    reference = [reference_greedy(model, tokenizer, p, MAX_NEW) for p in PROMPTS]
    assert batched == single == whole == [text for text, _ in reference]
    # The random model stops at EOS for some prompts, so early stopping inside a padded batch
    # is exercised too.
    assert any(hit for _, hit in reference) and not all(hit for _, hit in reference)
    for text in batched:
        assert len(text.split()) <= MAX_NEW


def test_shared_prefix_cache_gives_plain_greedy_output(tiny):
    """Continuing a copy of the prefix's KV cache decodes exactly what a cache-free greedy loop does,
    and a prompt that does not start with the prefix is refused before any work."""
    model, tokenizer = tiny
    prefix = "A chat USER: 计算 9 的 平方根 ？ "
    prompts = [prefix + tail for tail in ("ASSISTANT:", "计算 7 的 2 次方 ？ ASSISTANT:", "面积 为")]
    reference = [reference_greedy(model, tokenizer, p, MAX_NEW)[0] for p in prompts]
    for batch_size in (1, 2, 3):  # rows of different lengths share one batch when > 1
        assert generate(model, tokenizer, prompts, MAX_NEW, prefix=prefix, batch_size=batch_size,
                        show_progress=False) == reference
    # "平方根x" is one (unknown) word: that prompt's tokens do not start with the prefix's, so the
    # cache holds only the tokens both prompts share, and both still decode as without it.
    cut = prefix.rstrip(" ？")
    mixed = [cut + " ？ ASSISTANT:", cut + "x ASSISTANT:"]
    assert tokenizer(mixed[1])["input_ids"][:len(tokenizer(cut)["input_ids"])] != tokenizer(cut)["input_ids"]
    assert generate(model, tokenizer, mixed, MAX_NEW, prefix=cut, batch_size=2, show_progress=False) == \
        [reference_greedy(model, tokenizer, p, MAX_NEW)[0] for p in mixed]
    with pytest.raises(ValueError, match="shared prefix"):
        generate(model, tokenizer, [*prompts, "7"], MAX_NEW, prefix=prefix, show_progress=False)


def test_stop_string_ends_generation_early(conv_smollm2_tokenizer):
    """transformers' stop strings need a real BPE tokenizer (they map strings onto token pieces)."""
    tokenizer = conv_smollm2_tokenizer
    model = make_model(len(tokenizer))
    prompts = ["问题：计算 1 + 2 等于多少？\n解答：", "问题：解方程 3x + 6 = 0\n解答："]
    full = generate(model, tokenizer, prompts, MAX_NEW, show_progress=False)
    # The text of the third new token of the first continuation: generation must end right after it.
    ids = tokenizer(prompts[0])["input_ids"]
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    word = tokenizer.decode(ids[-1:])
    stopped = generate(model, tokenizer, prompts, MAX_NEW, show_progress=False, stop=(word,))
    assert stopped[0] == tokenizer.decode(ids[-3:]) and full[0].startswith(stopped[0]) and full[0] != stopped[0]
    assert full[1].startswith(stopped[1]) and (stopped[1] == full[1] or stopped[1].endswith(word))


def test_tokenizer_and_model_state_restored(tiny):
    model, tokenizer = tiny
    model.train()
    try:
        generate(model, tokenizer, PROMPTS[:2], 2, show_progress=False)
        assert tokenizer.padding_side == "right" and tokenizer.pad_token is None
        assert model.training
    finally:
        model.eval()


def test_generate_edge_cases(tiny):
    model, tokenizer = tiny
    assert generate(model, tokenizer, [], MAX_NEW) == []
    with pytest.raises(ValueError):
        generate(model, tokenizer, PROMPTS, 0)
    with pytest.raises(ValueError):
        generate(model, tokenizer, PROMPTS, 4, batch_size=0)


def test_cli_model_mode_end_to_end(tiny, tmp_path, capsys):
    model, tokenizer = tiny
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    items = tmp_path / "items.jsonl"
    rows = [{"id": i, "category": "demo", "problem": p, "answer": "3"} for i, p in enumerate(PROMPTS)]
    items.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    rc = math_cli.main(["--items", str(items), "--hf_model_dir", str(model_dir), "--limit", "3",
                        "--max_new_tokens", "4", "--batch_size", "2", "--device", "cpu",
                        "--output_dir", str(out)])
    assert rc == 0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in preds] == [0, 1, 2]
    from preprocess.templates import get_template
    template = get_template("vicuna_v1.1")
    expected = [reference_greedy(model, tokenizer, template.render_prompt(p), 4)[0] for p in PROMPTS[:3]]
    assert [p["generation"] for p in preds] == expected
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["total"] == 3 and metrics["source"]["hf_model_dir"] == str(model_dir)
    assert "| **overall** | 3 |" in capsys.readouterr().out
