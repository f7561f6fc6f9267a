"""GGUF reading and GGUF -> MindFormers checkpoint conversion on small synthetic GGUF files,
plus the embedded SmolLM2 file's metadata and tokenizer."""
import gguf
import numpy as np
import pytest

from research.llama3.checkpoint.convert_gguf import (
    convert_gguf_to_mindformers,
    main,
    read_gguf,
    unpermute_rope_rows,
)
from preprocess.cli import run_main
from research.llama3.checkpoint.gguf_file import default_gguf_path
from research.llama3.config.model_config import LlamaDims
from research.llama3.checkpoint.weight_names import hf_to_ms_name

pytestmark = pytest.mark.integration

TINY = dict(vocab=40, hidden=32, layers=2, heads=4, kv_heads=2, ffn=48)


def llama_cpp_permute(weight, n_heads):
    """The row order llama.cpp's convert_hf_to_gguf.py gives q/k (written independently here)."""
    rows = weight.shape[0]
    out = np.empty_like(weight)
    head_dim = rows // n_heads
    for h in range(n_heads):
        for i in range(head_dim // 2):
            for j in range(2):
                out[h * head_dim + 2 * i + j] = weight[h * head_dim + j * (head_dim // 2) + i]
    return out


def tiny_hf_weights(tied, seed=0):
    rng = np.random.default_rng(seed)
    v, h, ff = TINY["vocab"], TINY["hidden"], TINY["ffn"]
    hd = h // TINY["heads"]

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    w = {"model.embed_tokens.weight": rand(v, h), "model.norm.weight": rand(h)}
    if not tied:
        w["lm_head.weight"] = rand(v, h)
    for i in range(TINY["layers"]):
        p = f"model.layers.{i}."
        w.update({
            p + "self_attn.q_proj.weight": rand(TINY["heads"] * hd, h),
            p + "self_attn.k_proj.weight": rand(TINY["kv_heads"] * hd, h),
            p + "self_attn.v_proj.weight": rand(TINY["kv_heads"] * hd, h),
            p + "self_attn.o_proj.weight": rand(h, h),
            p + "mlp.gate_proj.weight": rand(ff, h),
            p + "mlp.up_proj.weight": rand(ff, h),
            p + "mlp.down_proj.weight": rand(h, ff),
            p + "input_layernorm.weight": rand(h),
            p + "post_attention_layernorm.weight": rand(h),
        })
    return w


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def write_tiny_gguf(path, weights, arch="llama", f16_names=()):
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(TINY["layers"])
    writer.add_context_length(128)
    writer.add_embedding_length(TINY["hidden"])
    writer.add_feed_forward_length(TINY["ffn"])
    writer.add_head_count(TINY["heads"])
    writer.add_head_count_kv(TINY["kv_heads"])
    writer.add_rope_dimension_count(TINY["hidden"] // TINY["heads"])
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(TINY["vocab"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    for name, array in weights.items():
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        elif name == "lm_head.weight":
            gname = "output.weight"
        else:
            layer, rest = name[len("model.layers."):].split(".", 1)
            module = rest[: -len(".weight")]
            gname = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
            if module == "self_attn.q_proj":
                array = llama_cpp_permute(array, TINY["heads"])
            elif module == "self_attn.k_proj":
                array = llama_cpp_permute(array, TINY["kv_heads"])
        if name in f16_names:
            array = array.astype(np.float16)
        writer.add_tensor(gname, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unpermute_inverts_llama_cpp_permutation():
    w = np.arange(6 * 8 * 3, dtype=np.float32).reshape(6 * 8, 3)
    np.testing.assert_array_equal(unpermute_rope_rows(llama_cpp_permute(w, 6), 6), w)
    with pytest.raises(ValueError):
        unpermute_rope_rows(np.zeros((10, 2), np.float32), 4)


@pytest.mark.parametrize("tied", [True, False])
def test_read_gguf_recovers_hf_weights_and_dims(tmp_path, tied):
    weights = tiny_hf_weights(tied)
    f16 = {"model.layers.0.mlp.up_proj.weight"}
    path = write_tiny_gguf(tmp_path / "tiny.gguf", weights, f16_names=f16)
    tensors, dims = read_gguf(path)
    assert set(tensors) == set(weights)
    for name, expected in weights.items():
        got = tensors[name]
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"], name
        if name in f16:
            np.testing.assert_array_equal(got, expected.astype(np.float16).astype(np.float32))
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    assert dims == LlamaDims(
        vocab_size=40, hidden_size=32, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=48,
        rms_norm_eps=1e-6, theta=50000.0, max_position=128, tie_word_embeddings=tied,
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
    )
    kwargs = dims.to_mindformers_kwargs()
    assert "pad_token_id" not in kwargs and kwargs["tie_word_embeddings"] is tied
    assert dims.to_mindformers_kwargs(pad_token_id=0)["pad_token_id"] == 0
    hf = dims.to_hf_config()
    assert (hf.num_key_value_heads, hf.head_dim, hf.rope_theta, hf.tie_word_embeddings) == (2, 8, 50000.0, tied)


def test_cli_writes_mindformers_checkpoint(tmp_path, capsys, conv_ms_cpu):
    ms = conv_ms_cpu
    weights = tiny_hf_weights(tied=False)
    path = write_tiny_gguf(tmp_path / "tiny.gguf", weights)
    out = tmp_path / "sub" / "tiny.ckpt"
    assert main(["--gguf", str(path), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert '"num_layers": 2' in printed and str(out) in printed
    # MindSpore writes checkpoints read-only; a re-run must still replace the file.
    assert main(["--gguf", str(path), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.ckpt"], "temporary file left behind"
    loaded = ms.load_checkpoint(str(out))
    assert set(loaded) == {hf_to_ms_name(n) for n in weights}
    for name, expected in weights.items():
        got = loaded[hf_to_ms_name(name)]
        assert got.dtype == ms.float32
        np.testing.assert_array_equal(got.asnumpy(), expected, err_msg=name)


def test_cli_reports_missing_file(tmp_path, capsys):
    assert run_main(main, ["--gguf", str(tmp_path / "nope.gguf"), "--output", str(tmp_path / "x.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.gguf" in err and err.count("\n") == 1


def test_rejects_bad_output_suffix_and_foreign_arch(tmp_path):
    path = write_tiny_gguf(tmp_path / "tiny.gguf", tiny_hf_weights(tied=True))
    with pytest.raises(ValueError, match=r"\.ckpt"):
        convert_gguf_to_mindformers(path, tmp_path / "out.bin")
    other = write_tiny_gguf(tmp_path / "gpt2.gguf", {"model.norm.weight": np.ones(32, np.float32)}, arch="gpt2")
    with pytest.raises(ValueError, match="llama"):
        read_gguf(other)


def test_read_gguf_rejects_missing_tensors(tmp_path):
    weights = tiny_hf_weights(tied=True)
    del weights["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match="up_proj"):
        read_gguf(write_tiny_gguf(tmp_path / "tiny.gguf", weights))


def test_embedded_smollm2_metadata(conv_smollm2_gguf):
    assert conv_smollm2_gguf == default_gguf_path() and conv_smollm2_gguf.is_file()
    dims = LlamaDims.from_gguf(conv_smollm2_gguf)
    assert dims == LlamaDims(
        vocab_size=49152, hidden_size=576, num_layers=30, num_heads=9, n_kv_heads=3, intermediate_size=1536,
        rms_norm_eps=1e-5, theta=100000.0, max_position=8192, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )


def test_smollm2_tokenizer_special_tokens(conv_smollm2_tokenizer):
    tok = conv_smollm2_tokenizer
    assert (tok.bos_token, tok.bos_token_id) == ("<|im_start|>", 1)
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
    assert tok.pad_token_id == 2
    assert len(tok) == 49152
    ids = tok("The capital of France").input_ids
    assert ids[0] != tok.bos_token_id, "GGUF says add_bos_token=False"
    assert tok.decode(ids) == "The capital of France"
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_gguf_tokenizer_is_built_once_and_each_caller_gets_its_own_copy(conv_smollm2_gguf, conv_smollm2_tokenizer):
    from research.llama3.tokenizers.gguf_tokenizer import _build, load_gguf_tokenizer

    hits = _build.cache_info().hits
    again = load_gguf_tokenizer(conv_smollm2_gguf)
    assert _build.cache_info().hits == hits + 1  # not rebuilt (10-20 s)
    assert again is not conv_smollm2_tokenizer
    text = "计算 183.94 的 5 次方 <|im_end|>"
    assert again(text).input_ids == conv_smollm2_tokenizer(text).input_ids
    again.padding_side = "left" if conv_smollm2_tokenizer.padding_side == "right" else "right"
    assert load_gguf_tokenizer(conv_smollm2_gguf).padding_side == conv_smollm2_tokenizer.padding_side


def test_gguf_tokenizer_disk_cache_is_used_and_a_damaged_entry_rebuilt(conv_smollm2_gguf, tmp_path, monkeypatch,
                                                                      caplog):
    import json

    from research.llama3.tokenizers.gguf_tokenizer import _build, cache_dir

    monkeypatch.setenv("MATHLORA_CACHE", str(tmp_path))
    path = conv_smollm2_gguf.resolve()
    key = (path, path.stat().st_size, path.stat().st_mtime_ns)
    built = _build.__wrapped__(*key)  # bypass the in-process cache
    saved = cache_dir() / f"{path.stem}-{key[1]}-{key[2]}"
    assert saved.parent == tmp_path / "gguf_tokenizers" and (saved / "tokenizer.json").is_file()
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary directory left

    # The next process reads the saved files (marked here) instead of rebuilding.
    config = json.loads((saved / "tokenizer_config.json").read_text())
    (saved / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 1234}))
    loaded = _build.__wrapped__(*key)
    assert loaded.model_max_length == 1234 and built.model_max_length == 8192
    text = "计算 183.94 的 5 次方 <|im_end|>"
    assert loaded(text).input_ids == built(text).input_ids
    assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (1, 2, 2)

    (saved / "tokenizer.json").write_text("{not json")
    rebuilt = _build.__wrapped__(*key)
    assert rebuilt(text).input_ids == built(text).input_ids
    assert "ignoring tokenizer cache" in caplog.text
    assert json.loads((saved / "tokenizer.json").read_text())["model"]  # the damaged entry was replaced
