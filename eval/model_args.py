"""Model options shared by the evaluation CLIs (``eval.math``, ``eval.base``, ``eval.logic``).

One place builds the generator from the command line: a transformers model (KV cache, CPU or
CUDA) from ``--hf_model_dir`` or from a MindFormers ``--load_checkpoint`` converted in memory, or
MindFormers' own ``LlamaForCausalLM`` (``--backend mindformers``, :mod:`eval.mf_generate`).
Option names follow MindFormers (``--config``, ``--load_checkpoint``, ``--seq_length``).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

from eval.sampling import Sampling
from research.llama3.config.model_config import read_model_config  # noqa: F401  (part of this module's API)

BACKENDS = ("transformers", "mindformers")
DTYPES = ("auto", "float32", "float16", "bfloat16")

# generator(prompts, sampling=None, prefix="", stop=()) -> texts; prefix and stop only save time
# (the transformers backend caches the shared prefix and stops early; callers still cut at their stop).
Generator = Callable[..., list[str]]


def positive_int(value: str) -> int:
    """argparse type: an int > 0."""
    n = int(value)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return n


def mindformers_config(value: str) -> str:
    """argparse type: a MindFormers YAML that passes ``research.llama3.config.config_check`` (checked when the
    command line is parsed, before any model or data is loaded)."""
    from research.llama3.config.config_check import validate_config

    try:
        validate_config(value)
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError; yaml.YAMLError too broad to name
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _bool(value: str) -> bool:
    """argparse type: true/false (MindFormers' run_mindformer.py spells booleans this way)."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value}")
    return value.lower() == "true"


def add_model_args(parser: argparse.ArgumentParser, source: argparse._MutuallyExclusiveGroup,
                   max_new_tokens: int, several_adapters: bool = False) -> None:
    """Add the model options; ``--hf_model_dir``/``--load_checkpoint`` join the ``source`` group
    (which also holds the CLI's ``--predictions``). With ``several_adapters``,
    ``--lora_checkpoint`` takes one or more files (a list; one model per adapter)."""
    source.add_argument("--hf_model_dir",
                        help="directory of a saved transformers causal LM and its tokenizer")
    source.add_argument("--load_checkpoint",
                        help="MindFormers base checkpoint (.ckpt); needs --config (model dims, tokenizer, "
                             "LoRA alpha/rank)")
    parser.add_argument("--config", default=None, type=mindformers_config,
                        help="MindFormers YAML of the checkpoint (needed with --load_checkpoint); checked against "
                             "the MindFormers 1.9 schema first (research.llama3.config.config_check)")
    parser.add_argument("--model_file", "--vocab_file", dest="model_file", default=None,
                        help="tokenizer file (e.g. Meta's tokenizer.model) overriding the YAML's "
                             "processor.tokenizer path (--vocab_file: MindFormers' key for it); the YAML "
                             "still names the tokenizer type")
    parser.add_argument("--lora_checkpoint", default=None, nargs="+" if several_adapters else None,
                        help="LoRA-only MindFormers checkpoint applied on top of --load_checkpoint"
                             + ("; several: an ensemble, one model per adapter" if several_adapters else ""))
    parser.add_argument("--backend", choices=BACKENDS, default="transformers",
                        help="transformers: PyTorch with KV cache (checkpoint converted in memory); "
                             "mindformers: MindFormers LlamaForCausalLM (needs --load_checkpoint), its KV cache "
                             "on Ascend, full recomputation per token on CPU (default: %(default)s)")
    parser.add_argument("--seq_length", type=positive_int, default=None,
                        help="mindformers backend: buffer length, prompt + new tokens "
                             "(default: the YAML's seq_length)")
    parser.add_argument("--use_past", type=_bool, default=None, metavar="{true,false}",
                        help="mindformers backend: MindFormers' KV cache and its own generate (Ascend only); "
                             "default: the YAML's use_past on Ascend, recomputation on CPU")
    parser.add_argument("--max_new_tokens", type=positive_int, default=max_new_tokens,
                        help="generation length limit per item (default: %(default)s)")
    parser.add_argument("--batch_size", type=positive_int, default=8,
                        help="prompts per generation batch (default: %(default)s)")
    parser.add_argument("--device", default=None,
                        help="transformers backend: torch device; default cuda if available, else cpu")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="transformers backend: weights dtype; auto = as saved (default: %(default)s)")


def add_template_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--template``: the chat template (``preprocess/templates.py``) wrapping each prompt as
    the training records were wrapped (``none``: the bare message, e.g. for a base model)."""
    from preprocess.templates import DEFAULT_TEMPLATE, TEMPLATES

    parser.add_argument("--template", choices=[*sorted(TEMPLATES), "none"], default=DEFAULT_TEMPLATE,
                        help="chat template used to render prompts (model mode; must match the one used "
                             "in training; default: %(default)s)")


def prompt_template(args: argparse.Namespace):
    """The :class:`preprocess.templates.ChatTemplate` named by ``args.template``, or None for ``none``."""
    from preprocess.templates import get_template

    return None if args.template == "none" else get_template(args.template)


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--temperature``, ``--top_p`` and ``--seed`` (used when a CLI samples)."""
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="sampling temperature, > 0 (default: %(default)s)")
    parser.add_argument("--top_p", type=float, default=0.95,
                        help="nucleus sampling mass, in (0, 1] (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the first sample; sample k uses seed + k (default: %(default)s)")


def load_model(args: argparse.Namespace):
    """Return ``(model, tokenizer)`` of the transformers backend from ``args``.

    Either ``--hf_model_dir`` (``from_pretrained`` directory) or ``--load_checkpoint`` with
    ``--config`` (a MindFormers checkpoint, plus ``--lora_checkpoint``, converted in memory by
    :func:`research.llama3.checkpoint.to_hf.build_hf_model`; LoRA scaled by the YAML's alpha/rank).

    Raises:
        ValueError: no model option given, or ``--load_checkpoint`` without ``--config``.
    """
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.load_checkpoint:
        from research.llama3.checkpoint.merge_lora import lora_scaling
        from research.llama3.config.model_config import LlamaDims
        from research.llama3.checkpoint.to_hf import build_hf_model
        from research.llama3.config.config_check import model_yaml
        from research.llama3.tokenizers.tokenizer import tokenizer_from_yaml

        if not args.config:
            raise ValueError("--load_checkpoint needs --config (the YAML the checkpoint was trained with)")
        checked = model_yaml(args.config)
        model_config = checked.model_config
        # A base checkpoint without adapter tensors never uses alpha/rank; with --lora_checkpoint the
        # YAML must state them (never a default scaling).
        alpha, rank = (lora_scaling(model_config.get("pet_config"), args.config) if args.lora_checkpoint
                       else (16, 8))
        model = build_hf_model(args.load_checkpoint, LlamaDims.from_mindformers(model_config),
                               lora_ckpt=args.lora_checkpoint, lora_alpha=alpha, lora_rank=rank)
        if args.dtype != "auto":
            model = model.to(getattr(torch, args.dtype))
        return model.to(device).eval(), tokenizer_from_yaml(checked, args.model_file).hf

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not args.hf_model_dir:
        raise ValueError("no model to load: pass --hf_model_dir or --load_checkpoint")
    dtype = args.dtype if args.dtype == "auto" else getattr(torch, args.dtype)
    tokenizer = AutoTokenizer.from_pretrained(args.hf_model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.hf_model_dir, dtype=dtype)
    return model.to(device).eval(), tokenizer


def make_generator(args: argparse.Namespace, show_progress: bool = True) -> Generator:
    """Load the model named by ``args`` once; return ``generate(prompts, sampling=None) -> texts``.

    Raises:
        ValueError: see :func:`load_model`; ``--backend mindformers`` without
            ``--load_checkpoint``/``--config``; ``--use_past`` with another backend or off Ascend.
    """
    if getattr(args, "use_past", None) is not None and getattr(args, "backend", None) != "mindformers":
        raise ValueError("--use_past applies to --backend mindformers only (transformers always uses its KV cache)")
    if getattr(args, "backend", "transformers") == "mindformers":
        from eval.mf_generate import MindFormersLM, mf_generate
        from research.llama3.config.config_check import model_yaml
        from research.llama3.tokenizers.tokenizer import tokenizer_from_yaml

        if not (args.load_checkpoint and args.config):
            raise ValueError("--backend mindformers needs --load_checkpoint and --config")
        # Checked and resolved once here; the model and the tokenizer take the same object.
        checked = model_yaml(args.config)
        lm = MindFormersLM.from_yaml(checked, args.load_checkpoint, lora_checkpoint=args.lora_checkpoint,
                                     seq_length=args.seq_length, use_past=args.use_past)
        tokenizer = tokenizer_from_yaml(checked, args.model_file).hf
        return lambda prompts, sampling=None, prefix="", stop=(): mf_generate(
            lm, tokenizer, prompts, args.max_new_tokens, batch_size=args.batch_size,
            sampling=sampling, show_progress=show_progress)

    from eval.generate import generate

    model, tokenizer = load_model(args)
    return lambda prompts, sampling=None, prefix="", stop=(): generate(
        model, tokenizer, prompts, args.max_new_tokens, batch_size=args.batch_size,
        show_progress=show_progress, sampling=sampling, prefix=prefix, stop=stop)


def model_source(args: argparse.Namespace) -> dict:
    """The model options of a run, for its metrics.json."""
    keys = ("backend", "hf_model_dir", "load_checkpoint", "lora_checkpoint", "config", "seq_length",
            "use_past", "max_new_tokens", "batch_size")
    return {k: getattr(args, k, None) for k in keys}
