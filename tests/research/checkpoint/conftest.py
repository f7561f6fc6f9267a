"""A tiny random MindFormers Llama (optionally with LoRA) for the conversion parity tests."""
import pytest


class _ConvTinyLlama:
    """Builders for a tiny float32 CPU MindFormers Llama (optionally MindPet LoRA on wq/wv) with random params."""

    seq = 8
    lora_rank, lora_alpha = 8, 24

    @staticmethod
    def dims(tied=False):
        from research.llama3.config.model_config import LlamaDims

        return LlamaDims(
            vocab_size=64, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=96,
            rms_norm_eps=1e-5, theta=10000.0, max_position=128, tie_word_embeddings=tied,
            bos_token_id=1, eos_token_id=2, pad_token_id=0,
        )

    def build(self, dims, lora, seed=0, pad_token_id=None):
        import numpy as np
        import mindspore as ms
        from mindformers.models.llama import LlamaConfig, LlamaForCausalLM
        from mindformers.pet import LoraConfig
        from mindformers.pet.pet_model import get_pet_model

        config = LlamaConfig(
            batch_size=1, seq_length=self.seq,
            compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
            rotary_dtype="float32", param_init_type="float32",
            use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
            **dims.to_mindformers_kwargs(pad_token_id=pad_token_id),
        )
        model = LlamaForCausalLM(config)
        if lora:
            model = get_pet_model(model, LoraConfig(
                lora_rank=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=0.0,
                target_modules=".*wq|.*wv"))
        rng = np.random.default_rng(seed)
        for param in model.get_parameters():
            # LoRA B starts at zero; random values make the delta (and its scaling) matter.
            value = rng.normal(0.0, 0.2, param.shape) + (1.0 if "norm" in param.name else 0.0)
            param.set_data(ms.Tensor(value.astype(np.float32)))
        model.set_train(False)
        return model

    @staticmethod
    def randomize_hf(model, seed):
        """Seeded random parameters for a transformers model, in place; returns it in eval mode.

        transformers' init (std 0.02, unit norms, zero biases) gives near-uniform logits; larger values
        make parity meaningful."""
        import torch

        torch.manual_seed(seed)
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(torch.randn_like(param) * 0.2 + (1.0 if "norm" in name else 0.0))
        return model.eval()

    @staticmethod
    def logits(model, ids):
        """Logits [batch, seq, vocab] (numpy) of a MindFormers model in eval mode for int ids [batch, seq]."""
        import numpy as np
        import mindspore as ms

        out = model(ms.Tensor(ids.astype(np.int32)))
        # Eval mode (no RUN_MODE=predict) returns (logits [batch, seq, vocab], tokens, input_mask).
        assert isinstance(out, tuple) and len(out) == 3
        return out[0].asnumpy()

    @staticmethod
    def save(params, path):
        """Save MindSpore Parameters (by their ``.name``) to ``path``; return the path."""
        import mindspore as ms

        ms.save_checkpoint([{"name": p.name, "data": p.data} for p in params], str(path))
        return path

    def save_split(self, model, directory):
        """Save a LoRA model's base parameters and LoRA parameters apart; return (base.ckpt, lora.ckpt) paths."""
        from research.llama3.checkpoint.weight_names import is_lora_name

        params = list(model.get_parameters())
        return (self.save([p for p in params if not is_lora_name(p.name)], directory / "base.ckpt"),
                self.save([p for p in params if is_lora_name(p.name)], directory / "lora.ckpt"))

    @staticmethod
    def rel_err(a, b):
        import numpy as np

        return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def conv_tiny_llama(conv_ms_cpu):
    """``_ConvTinyLlama`` builders, with MindSpore in PyNative CPU mode for the test."""
    return _ConvTinyLlama()
