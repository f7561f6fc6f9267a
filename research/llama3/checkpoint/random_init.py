"""Write a seeded random-initialised base checkpoint for a YAML's model (smoke runs and tests).

Usage: ``python -m research.llama3.checkpoint.random_init --config YAML --output base.ckpt [--seed 0]``

The checkpoint holds the base model only (MindFormers names, float32), the same kind of file the
GGUF converter writes for a real model, so the smoke chain takes the same path as a real run.
"""
import argparse
import os
import sys
from preprocess.cli import Parser


def build_model(model_config: dict, with_lora: bool = False):
    """Build MindFormers' ``LlamaForCausalLM`` from a YAML ``model.model_config`` mapping.

    Args:
        model_config: MindFormers LlamaConfig keys (``type`` is ignored).
        with_lora: keep the ``pet_config`` (LoRA cells are built) or drop it (base model only).
    """
    from mindformers import LlamaConfig, LlamaForCausalLM

    kwargs = {k: v for k, v in dict(model_config).items() if k != "type"}
    if not with_lora:
        kwargs.pop("pet_config", None)
    return LlamaForCausalLM(LlamaConfig(**kwargs))


def init_random_checkpoint(config_path: str, output: str, seed: int = 0) -> int:
    """Save a random base model for ``config_path`` to ``output`` atomically; return its parameter count."""
    import mindspore as ms
    from mindformers import MindFormerConfig
    from research.llama3.config.config_check import validate_config

    validate_config(config_path)
    ms.set_seed(seed)
    config = MindFormerConfig(config_path)
    model = build_model(config.model.model_config)
    params = [{"name": p.name, "data": p} for p in model.get_parameters()]
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    ms.save_checkpoint(params, output + ".tmp.ckpt")
    os.replace(output + ".tmp.ckpt", output)
    return sum(int(p["data"].size) for p in params)


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.random_init", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="MindFormers YAML (model.model_config is used)")
    parser.add_argument("--output", required=True, help="checkpoint to write")
    parser.add_argument("--seed", type=int, default=0, help="MindSpore seed")
    args = parser.parse_args(argv)
    n = init_random_checkpoint(args.config, args.output, args.seed)
    print(f"wrote {args.output}: {n:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
