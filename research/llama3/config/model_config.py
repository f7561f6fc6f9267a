"""Architecture dimensions of a Llama-family model, shared by every converter.

``LlamaDims`` is the single source of truth: it is read from a GGUF file's
metadata and rendered either as a ``transformers.LlamaConfig`` or as keyword
arguments for MindFormers' ``LlamaConfig``. Qwen2/Qwen2.5 models are the same
decoder with q/k/v biases (``qkv_has_bias``); their family-specific rules live
in ``research.llama3.checkpoint.qwen2``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from research.llama3.checkpoint.gguf_file import MISSING, gguf_field, output_copies_embedding

__all__ = ["LlamaDims", "eval_backend_for", "read_config", "read_model_config"]

def read_config(config_path: str | os.PathLike) -> dict:
    """A MindFormers YAML as a plain dict, its ``base_config`` chain resolved as MindFormers 1.9 reads it
    (``research.llama3.config.config_check.resolved_config``: ``MindFormerConfig._file2dict``, before
    MindFormers fills in its defaults).

    Raises:
        FileNotFoundError: the YAML or one of its bases does not exist.
        ValueError: not YAML, or not a mapping.
    """
    from research.llama3.config.config_check import resolved_config

    return resolved_config(config_path)


def read_model_config(config_path: str | os.PathLike) -> dict:
    """The ``model.model_config`` mapping of a MindFormers YAML (``base_config`` resolved, see
    :func:`read_config`).

    Raises:
        FileNotFoundError: no such file.
        KeyError: the YAML has no ``model.model_config``.
    """
    return read_config(config_path)["model"]["model_config"]


def eval_backend_for(config_path: str | os.PathLike) -> str:
    """The evaluation backend for a run of this YAML: ``"mindformers"`` when its
    ``context.device_target`` is Ascend (the model stays on the NPU, with MindFormers' KV cache),
    else ``"transformers"`` (PyTorch on the host CPU or CUDA).

    Raises:
        FileNotFoundError: no such YAML.
    """
    target = str((read_config(config_path).get("context") or {}).get("device_target", "CPU"))
    return "mindformers" if target.lower() == "ascend" else "transformers"


@dataclass(frozen=True)
class LlamaDims:
    """Dimensions and special-token ids of a Llama decoder.

    ``head_dim`` is implied as ``hidden_size // num_heads``; GGUF files whose
    rope dimension differs from that are rejected by ``from_gguf``.
    ``qkv_has_bias`` (MindFormers' key) marks the Qwen2 family (:attr:`family`).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    n_kv_heads: int
    intermediate_size: int
    rms_norm_eps: float
    theta: float
    max_position: int
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    qkv_has_bias: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def family(self) -> str:
        """``"qwen2"`` for a decoder with q/k/v biases, else ``"llama"`` (HF model_type, GGUF architecture)."""
        from research.llama3.checkpoint.qwen2 import LLAMA, QWEN2

        return QWEN2 if self.qkv_has_bias else LLAMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hf_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor of a ``transformers.LlamaForCausalLM`` with these dims, by state_dict name.

        A tied model (``tie_word_embeddings``) has no ``lm_head.weight`` entry; a Qwen2 one
        (``qkv_has_bias``) has ``q_proj/k_proj/v_proj.bias`` too.
        """
        h, hd, ff = self.hidden_size, self.head_dim, self.intermediate_size
        shapes = {"model.embed_tokens.weight": (self.vocab_size, h), "model.norm.weight": (h,)}
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, h)
        for i in range(self.num_layers):
            p = f"model.layers.{i}."
            shapes.update({
                p + "self_attn.q_proj.weight": (self.num_heads * hd, h),
                p + "self_attn.k_proj.weight": (self.n_kv_heads * hd, h),
                p + "self_attn.v_proj.weight": (self.n_kv_heads * hd, h),
                p + "self_attn.o_proj.weight": (h, self.num_heads * hd),
                p + "mlp.gate_proj.weight": (ff, h),
                p + "mlp.up_proj.weight": (ff, h),
                p + "mlp.down_proj.weight": (h, ff),
                p + "input_layernorm.weight": (h,),
                p + "post_attention_layernorm.weight": (h,),
            })
            if self.qkv_has_bias:
                shapes.update({
                    p + "self_attn.q_proj.bias": (self.num_heads * hd,),
                    p + "self_attn.k_proj.bias": (self.n_kv_heads * hd,),
                    p + "self_attn.v_proj.bias": (self.n_kv_heads * hd,),
                })
        return shapes

    @classmethod
    def from_gguf(cls, path: str | os.PathLike) -> "LlamaDims":
        """Read the dims from a GGUF file's metadata (tensors are not loaded).

        Args:
            path: a GGUF file with ``general.architecture`` ``llama`` or ``qwen2``.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: neither a Llama nor a Qwen2 GGUF, or it uses rope scaling / a rope
                dimension that the MindFormers and HF configs built here
                would silently ignore.
        """
        import gguf

        if not os.path.isfile(path):
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return cls.from_gguf_reader(gguf.GGUFReader(os.fspath(path), "r"))

    @classmethod
    def from_gguf_reader(cls, reader) -> "LlamaDims":
        """Same as ``from_gguf`` for an already open ``gguf.GGUFReader``.

        ``tie_word_embeddings``: no ``output.weight`` tensor, or one that is a copy of
        ``token_embd.weight`` (``gguf_file.output_copies_embedding``: same shape, correlation > 0.999
        after dequantization); the converters then drop that copy."""
        from research.llama3.checkpoint.qwen2 import FAMILIES, QWEN2

        arch = gguf_field(reader, "general.architecture")
        if arch not in FAMILIES:
            raise ValueError(f"expected a {' or '.join(FAMILIES)} GGUF, got general.architecture={arch!r}")

        def meta(key, default=MISSING):
            return gguf_field(reader, f"{arch}.{key}", default)

        hidden = int(meta("embedding_length"))
        heads = int(meta("attention.head_count"))
        rope_dim = meta("rope.dimension_count", None)
        if rope_dim is not None and int(rope_dim) != hidden // heads:
            raise ValueError(
                f"partial rotary embedding (rope.dimension_count={rope_dim}, head_dim={hidden // heads}) "
                "is not supported"
            )
        scaling = meta("rope.scaling.type", "none")
        if scaling not in ("none", None):
            raise ValueError(f"rope scaling {scaling!r} is not supported")

        vocab = meta("vocab_size", None)
        if vocab is None:
            vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
        # GGUF stores eps as float32; 9.9999997e-06 would leak into saved configs.
        eps = float(f"{float(meta('attention.layer_norm_rms_epsilon')):.7g}")
        tensor_names = {t.name for t in reader.tensors}

        def token_id(name):
            value = gguf_field(reader, f"tokenizer.ggml.{name}_token_id", None)
            return None if value is None else int(value)

        return cls(
            vocab_size=int(vocab),
            hidden_size=hidden,
            num_layers=int(meta("block_count")),
            num_heads=heads,
            n_kv_heads=int(meta("attention.head_count_kv", heads)),
            intermediate_size=int(meta("feed_forward_length")),
            rms_norm_eps=eps,
            theta=float(meta("rope.freq_base", 10000.0)),
            max_position=int(meta("context_length")),
            # llama.cpp omits output.weight when the model ties it to the embedding; other writers store
            # the tied matrix twice (then output.weight correlates > 0.999 with token_embd.weight).
            tie_word_embeddings="output.weight" not in tensor_names or output_copies_embedding(reader),
            bos_token_id=token_id("bos"),
            eos_token_id=token_id("eos"),
            pad_token_id=token_id("padding"),
            qkv_has_bias=arch == QWEN2,
        )

    @classmethod
    def from_mindformers(cls, model_config: dict) -> "LlamaDims":
        """Dims from a MindFormers YAML's ``model.model_config`` mapping.

        ``tie_word_embeddings`` defaults to False and ``max_position_embedding`` to ``seq_length``,
        as in MindFormers' LlamaConfig.

        Raises:
            KeyError: a required key (hidden_size, num_layers, num_heads, vocab_size,
                intermediate_size) is absent.
        """
        mc = dict(model_config)
        return cls(
            vocab_size=int(mc["vocab_size"]),
            hidden_size=int(mc["hidden_size"]),
            num_layers=int(mc["num_layers"]),
            num_heads=int(mc["num_heads"]),
            n_kv_heads=int(mc.get("n_kv_heads") or mc["num_heads"]),
            intermediate_size=int(mc["intermediate_size"]),
            rms_norm_eps=float(mc.get("rms_norm_eps", 1e-5)),
            theta=float(mc.get("theta", 10000.0)),
            max_position=int(mc.get("max_position_embedding") or mc.get("seq_length", 2048)),
            tie_word_embeddings=bool(mc.get("tie_word_embeddings", False)),
            bos_token_id=mc.get("bos_token_id"),
            eos_token_id=mc.get("eos_token_id"),
            pad_token_id=mc.get("pad_token_id"),
            qkv_has_bias=bool(mc.get("qkv_has_bias", False)),
        )

    @classmethod
    def from_hf_config(cls, config) -> "LlamaDims":
        """Dims from a ``transformers.LlamaConfig`` or ``Qwen2Config`` (e.g. ``AutoConfig.from_pretrained(dir)``).

        Raises:
            ValueError: neither a Llama nor a Qwen2 config, or one that uses features the MindFormers
                model built from these dims would silently ignore (rope scaling such as Llama-3.1's
                ``llama3``, Llama's attention/MLP biases, Qwen2's sliding window, a ``head_dim`` other
                than hidden_size / num_heads, an activation other than silu).
        """
        from research.llama3.checkpoint.qwen2 import FAMILIES, QWEN2, check_qwen2_hf_config

        model_type = getattr(config, "model_type", None)
        if model_type not in FAMILIES:
            raise ValueError(f"expected a {' or '.join(FAMILIES)} config, got model_type={model_type!r}")
        scaling = getattr(config, "rope_scaling", None)
        if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
            raise ValueError(f"rope scaling {scaling!r} is not supported")
        head_dim = getattr(config, "head_dim", None)
        if head_dim is not None and head_dim != config.hidden_size // config.num_attention_heads:
            raise ValueError(f"head_dim={head_dim} differs from hidden_size / num_attention_heads")
        if config.hidden_act != "silu":
            raise ValueError(f"hidden_act={config.hidden_act!r} is not supported ({model_type} uses silu)")
        if model_type == QWEN2:
            check_qwen2_hf_config(config)
        elif getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
            # Llama's flags put biases on o_proj / the MLP too, which MindFormers' Llama has no place for.
            raise ValueError("attention/MLP biases are not supported")

        def first(value):
            # Llama-3 Instruct configs list several EOS ids; MindFormers takes one.
            return value[0] if isinstance(value, (list, tuple)) else value

        return cls(
            vocab_size=int(config.vocab_size),
            hidden_size=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            num_heads=int(config.num_attention_heads),
            n_kv_heads=int(config.num_key_value_heads or config.num_attention_heads),
            intermediate_size=int(config.intermediate_size),
            rms_norm_eps=float(config.rms_norm_eps),
            theta=float(getattr(config, "rope_theta", 10000.0)),
            max_position=int(config.max_position_embeddings),
            tie_word_embeddings=bool(config.tie_word_embeddings),
            bos_token_id=first(config.bos_token_id),
            eos_token_id=first(config.eos_token_id),
            pad_token_id=first(config.pad_token_id),
            qkv_has_bias=model_type == QWEN2,
        )

    def to_hf_config(self):
        """A float32 ``transformers.LlamaConfig``, or ``Qwen2Config`` for the qwen2 family, with these dims."""
        common = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.n_kv_heads,
            hidden_act="silu",
            max_position_embeddings=self.max_position,
            rms_norm_eps=self.rms_norm_eps,
            rope_theta=self.theta,
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            dtype="float32",
        )
        if self.qkv_has_bias:
            from research.llama3.checkpoint.qwen2 import qwen2_hf_config

            return qwen2_hf_config(common)
        from transformers import LlamaConfig

        return LlamaConfig(**common, head_dim=self.head_dim, attention_bias=False, mlp_bias=False)

    def to_mindformers_kwargs(self, pad_token_id: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``mindformers.models.llama.LlamaConfig``.

        Only architecture keys are returned; the caller adds run-time keys
        (``seq_length``, ``batch_size``, dtypes, ``use_flash_attention`` ...).
        MindFormers 1.9 honours ``intermediate_size`` directly (it overrides
        ``multiple_of``/``ffn_dim_multiplier``), and ``tie_word_embeddings``
        makes ``lm_head`` share the embedding Parameter, so checkpoints of a
        tied model hold no ``lm_head.weight``.

        Beware: MindFormers' ``LlamaModel`` derives its attention mask from
        ``input_ids != pad_token_id`` (such positions are hidden as keys) and
        its default loss mask likewise. When the pad id is also a real token
        (SmolLM2: pad == eos == ``<|im_end|>``, id 2) every ``<|im_end|>`` in
        a chat prompt becomes invisible, unlike in transformers, which only
        masks what ``attention_mask`` says. Pass ``pad_token_id`` to use an id
        that never occurs in real inputs (and pad batches with it).

        Args:
            pad_token_id: overrides ``self.pad_token_id`` for MindFormers only.
        """
        kwargs = {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "n_kv_heads": self.n_kv_heads,
            "intermediate_size": self.intermediate_size,
            "rms_norm_eps": self.rms_norm_eps,
            "theta": self.theta,
            "max_position_embedding": self.max_position,
            "tie_word_embeddings": self.tie_word_embeddings,
        }
        if self.qkv_has_bias:
            kwargs["qkv_has_bias"] = True
        ids = {
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id if pad_token_id is None else pad_token_id,
        }
        # MindFormers types these as int; an absent id keeps its default rather than None.
        kwargs.update({key: value for key, value in ids.items() if value is not None})
        return kwargs
