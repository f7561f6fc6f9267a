"""The embedded SmolLM2-135M-Instruct: converted MindFormers weights against transformers' own GGUF loader."""
import numpy as np
import pytest
import torch

from research.llama3.checkpoint.to_hf import build_hf_model, load_ms_checkpoint
from research.llama3.checkpoint.weight_names import ms_to_hf_name

pytestmark = pytest.mark.integration

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def hf_reference(conv_smollm2_hf_reference):
    assert conv_smollm2_hf_reference.config.tie_word_embeddings
    return conv_smollm2_hf_reference


@pytest.fixture(scope="module")
def chat_ids(conv_smollm2_tokenizer):
    ids = conv_smollm2_tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_tensors="pt")
    return ids.numpy()


def test_converted_weights_equal_transformers_gguf_loader(conv_smollm2_ckpt, hf_reference):
    ckpt, dims = conv_smollm2_ckpt
    weights = load_ms_checkpoint(ckpt)
    assert "lm_head.weight" not in weights  # tied: MindFormers shares the embedding Parameter
    reference = {k: v for k, v in hf_reference.state_dict().items() if k != "lm_head.weight"}
    assert {ms_to_hf_name(n) for n in weights} == set(reference)
    for name, array in weights.items():
        np.testing.assert_array_equal(array, reference[ms_to_hf_name(name)].numpy(), err_msg=name)


def test_mindformers_logits_match_transformers(conv_smollm2_ckpt, hf_reference, chat_ids, conv_ms_cpu):
    ms = conv_ms_cpu
    from mindformers.models.llama import LlamaConfig, LlamaForCausalLM

    ckpt, dims = conv_smollm2_ckpt
    # The chat prompt holds <|im_end|> (id 2 = SmolLM2's pad id); MindFormers would hide it as a
    # padding key, so its pad id is moved to <|endoftext|> (0), absent from the prompt.
    assert (chat_ids == dims.pad_token_id).any() and not (chat_ids == 0).any()
    config = LlamaConfig(
        batch_size=1, seq_length=chat_ids.shape[1],
        compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
        rotary_dtype="float32", param_init_type="float32",
        use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
        **dims.to_mindformers_kwargs(pad_token_id=0),
    )
    model = LlamaForCausalLM(config)
    not_loaded, unused = ms.load_param_into_net(model, ms.load_checkpoint(str(ckpt)))
    assert not_loaded == [] and unused == []
    model.set_train(False)
    logits = model(ms.Tensor(chat_ids.astype(np.int32)))[0].asnumpy()
    with torch.no_grad():
        reference = hf_reference(torch.from_numpy(chat_ids)).logits.numpy()
    assert logits.shape == reference.shape == (1, chat_ids.shape[1], dims.vocab_size)
    rel = np.linalg.norm(logits - reference) / np.linalg.norm(reference)
    print(f"SmolLM2 MindFormers vs transformers: rel err {rel:.2e}, max abs {np.abs(logits - reference).max():.2e}")
    assert rel < 1e-3
    assert (logits.argmax(-1) == reference.argmax(-1)).all()


def test_greedy_answer_through_build_hf_model(conv_smollm2_ckpt, conv_smollm2_tokenizer, chat_ids):
    ckpt, dims = conv_smollm2_ckpt
    tok = conv_smollm2_tokenizer
    model = build_hf_model(str(ckpt), dims)
    ids = torch.from_numpy(chat_ids)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    print(f"greedy answer: {answer!r}")
    assert "Paris" in answer
    assert out[0, -1].item() == tok.eos_token_id, "the answer should end with <|im_end|> within 24 tokens"
