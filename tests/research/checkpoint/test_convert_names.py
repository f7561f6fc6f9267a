"""Name mapping between MindFormers and Hugging Face Llama parameters (no model needed)."""
import pytest

from research.llama3.checkpoint.weight_names import hf_to_ms_name, is_lora_name, ms_to_hf_name

pytestmark = pytest.mark.unit

PAIRS = [
    ("model.tok_embeddings.embedding_weight", "model.embed_tokens.weight"),
    ("model.norm_out.weight", "model.norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
    ("model.layers.0.attention.wq.weight", "model.layers.0.self_attn.q_proj.weight"),
    ("model.layers.1.attention.wk.weight", "model.layers.1.self_attn.k_proj.weight"),
    ("model.layers.2.attention.wv.weight", "model.layers.2.self_attn.v_proj.weight"),
    ("model.layers.29.attention.wo.weight", "model.layers.29.self_attn.o_proj.weight"),
    ("model.layers.3.feed_forward.w1.weight", "model.layers.3.mlp.gate_proj.weight"),
    ("model.layers.3.feed_forward.w2.weight", "model.layers.3.mlp.down_proj.weight"),
    ("model.layers.3.feed_forward.w3.weight", "model.layers.3.mlp.up_proj.weight"),
    ("model.layers.4.attention_norm.weight", "model.layers.4.input_layernorm.weight"),
    ("model.layers.4.ffn_norm.weight", "model.layers.4.post_attention_layernorm.weight"),
    ("model.layers.5.attention.wq.mindpet_delta_lora_a", "model.layers.5.self_attn.q_proj.lora_A.weight"),
    ("model.layers.5.attention.wv.mindpet_delta_lora_b", "model.layers.5.self_attn.v_proj.lora_B.weight"),
    ("model.layers.6.feed_forward.w2.mindpet_delta_lora_a", "model.layers.6.mlp.down_proj.lora_A.weight"),
]


@pytest.mark.parametrize("ms_name,hf_name", PAIRS)
def test_known_pairs_map_both_ways(ms_name, hf_name):
    assert ms_to_hf_name(ms_name) == hf_name
    assert hf_to_ms_name(hf_name) == ms_name


def test_peft_prefix_is_written_and_accepted():
    ms_name = "model.layers.0.attention.wq.mindpet_delta_lora_a"
    peft = ms_to_hf_name(ms_name, peft_prefix=True)
    assert peft == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert hf_to_ms_name(peft) == ms_name


@pytest.mark.parametrize("name", [
    "adam_m.model.layers.0.attention.wq.weight",
    "global_step",
    "model.layers.0.attention.wz.weight",
    "model.layers.x.attention.wq.weight",
    "model.layers.0.attention_norm.mindpet_delta_lora_a",
    "model.tok_embeddings.weight",
])
def test_unmapped_mindformers_name_raises_with_the_name(name):
    with pytest.raises(ValueError, match="unmapped") as info:
        ms_to_hf_name(name)
    assert name in str(info.value)


@pytest.mark.parametrize("name", [
    "model.layers.0.self_attn.q_proj.lora_A.default.weight",
    "model.layers.0.self_attn.rotary_emb.inv_freq",
    "model.layers.0.input_layernorm.lora_A.weight",
    "transformer.wte.weight",
])
def test_unmapped_hf_name_raises_with_the_name(name):
    with pytest.raises(ValueError, match="unmapped") as info:
        hf_to_ms_name(name)
    assert name in str(info.value)


def test_is_lora_name():
    assert is_lora_name("model.layers.0.attention.wq.mindpet_delta_lora_b")
    assert is_lora_name("model.layers.0.self_attn.q_proj.lora_A.weight")
    assert not is_lora_name("model.layers.0.attention.wq.weight")
