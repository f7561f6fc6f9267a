"""Export a LoRA fine-tuned MindFormers Llama as MindIR, with the adapter merged into the weights.

Usage::

    python -m research.llama3.export.export_mindir --config YAML --load_checkpoint base.ckpt \\
        [--lora_checkpoint lora.ckpt] --output model.mindir [--seq_length N] [--batch_size B] \\
        [--check_parity] [--backend mindspore|lite]

The adapter is merged with ``research.llama3.checkpoint.merge_lora`` (``W + lora_alpha / lora_rank * B @ A``, alpha and
rank from the YAML's ``pet_config``), loaded strictly into the YAML's model without LoRA cells, and exported
with ``mindspore.export(file_format="MINDIR")``. The graph takes ``input_ids`` int32 ``[batch, seq_length]``
(fixed shape: pad shorter prompts) and returns logits float32 ``[batch, seq_length, vocab]`` (MindFormers'
prediction mode flattens them to ``[batch * seq_length, vocab]``; ``run_mindir`` reshapes back).

``--check_parity`` loads the file back (``mindspore.load`` + ``nn.GraphCell``) and compares its logits with
the unmerged model (base + LoRA cells) on a seeded random prompt.

MindSpore Lite (``--backend lite``) runs the same file through ``mindspore_lite`` when that package imports.
It is untested here: no mindspore-lite wheel exists for Python 3.11 (PyPI's only wheel, 2.0.0, is for
Python 3.7 and cannot read current MindIR).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
from preprocess.cli import Failure, Parser, UserError, reported_as, run_main

__all__ = ["lite_available", "build_inference_model", "export_mindir", "run_mindir", "unmerged_logits",
           "check_parity", "main"]


def lite_available() -> bool:
    """True when ``mindspore_lite`` imports (the optional Lite backend of ``run_mindir``)."""
    try:
        import mindspore_lite  # noqa: F401
    except ImportError:
        return False
    return True


def _model_config(config_path: str, seq_length: int | None, batch_size: int) -> dict:
    from mindformers import MindFormerConfig
    from research.llama3.config.config_check import validate_config

    validate_config(config_path)
    model_config = dict(MindFormerConfig(config_path).model.model_config)
    # One fixed-shape forward, no KV cache: use_past has no CPU kernels in MindFormers 1.9.
    model_config.update(batch_size=batch_size, use_past=False)
    if seq_length:
        model_config["seq_length"] = seq_length
    return model_config


def build_inference_model(config_path: str, checkpoints: list[str], seq_length: int | None = None,
                          batch_size: int = 1, with_lora: bool = False):
    """The YAML's ``LlamaForCausalLM`` in eval mode with ``checkpoints`` loaded strictly.

    Args:
        config_path: MindFormers YAML (``model.model_config``).
        checkpoints: ``.ckpt`` files loaded in order (later ones override); together they must
            cover every parameter of the model.
        seq_length, batch_size: input shape the model is built for (default: the YAML's seq_length).
        with_lora: add the LoRA cells of ``pet_config`` with MindFormers' ``get_pet_model`` (the unmerged
            reference); it writes ``adapter_config.json`` under ``$LOCAL_DEFAULT_PATH``.

    Raises:
        ValueError: a model parameter is missing from the checkpoints, or they hold extra tensors.
    """
    import mindspore as ms

    from research.llama3.checkpoint.ms_checkpoint import load_ms_checkpoint
    from research.llama3.checkpoint.random_init import build_model

    model_config = _model_config(config_path, seq_length, batch_size)
    model = build_model(model_config, with_lora=False)
    if with_lora:
        # LlamaForCausalLM ignores pet_config; MindFormers' trainer adds the LoRA cells this way.
        from mindformers.pet import LoraConfig
        from mindformers.pet.pet_model import get_pet_model

        pet = model_config["pet_config"]
        model = get_pet_model(model, LoraConfig(lora_rank=pet["lora_rank"], lora_alpha=pet["lora_alpha"],
                                                lora_dropout=pet.get("lora_dropout", 0.0),
                                                target_modules=pet["target_modules"]))
    weights = {}
    for path in checkpoints:
        weights.update(load_ms_checkpoint(path))
    params = {name: ms.Parameter(ms.Tensor(array), name=name) for name, array in weights.items()}
    not_loaded, unused = ms.load_param_into_net(model, params)
    if not_loaded or unused:
        raise ValueError(f"checkpoints {checkpoints} do not fit {config_path}: missing {not_loaded[:5]} "
                         f"({len(not_loaded)}), unexpected {unused[:5]} ({len(unused)})")
    model.set_train(False)
    return model


def export_mindir(config_path: str, base_ckpt: str, output: str, lora_ckpt: str | None = None,
                  seq_length: int | None = None, batch_size: int = 1) -> str:
    """Merge ``lora_ckpt`` into ``base_ckpt`` (if given) and export the model to ``output`` as MindIR.

    Args:
        config_path: the training YAML; its ``pet_config`` gives lora_alpha / lora_rank.
        base_ckpt: MindFormers base checkpoint.
        output: path of the MindIR file; must end in ``.mindir``. Written to a temporary name first and
            renamed, so an interrupted export leaves no partial file under this name.
        lora_ckpt: LoRA-only (or full) checkpoint of the fine-tuning run.
        seq_length, batch_size: the exported graph's fixed input shape ``[batch_size, seq_length]``.

    Returns:
        ``output``.

    Raises:
        ValueError: ``output`` lacks ``.mindir``, alpha/rank missing, shape mismatches (see
            ``merge_lora.merge_lora_checkpoint``), or the checkpoints do not fit the model.
        FileNotFoundError: a checkpoint is missing.
    """
    import mindspore as ms

    if not output.endswith(".mindir"):
        raise ValueError(f"output must end in .mindir (MindSpore appends it otherwise): {output}")
    from research.llama3.checkpoint.merge_lora import merge_lora_checkpoint

    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export_") as tmp:
        ckpt = base_ckpt
        if lora_ckpt:
            ckpt = os.path.join(tmp, "merged.ckpt")
            merge_lora_checkpoint(base_ckpt, lora_ckpt, ckpt, _model_config(config_path, None, 1).get("pet_config"))
        model = build_inference_model(config_path, [ckpt], seq_length, batch_size)
        seq = seq_length or model.config.seq_length
        ms.export(model, ms.Tensor(np.zeros((batch_size, seq), np.int32)),
                  file_name=os.path.join(tmp, "model"), file_format="MINDIR")
        os.replace(os.path.join(tmp, "model.mindir"), output)
    return output


def run_mindir(path: str, input_ids: np.ndarray, backend: str = "mindspore") -> np.ndarray:
    """Logits float32 ``[batch, seq, vocab]`` of an exported MindIR for int ``input_ids [batch, seq]``.

    Args:
        backend: ``mindspore`` (``mindspore.load`` + ``nn.GraphCell``) or ``lite`` (``mindspore_lite``,
            CPU target; untested here, see the module docstring).

    Raises:
        RuntimeError: ``backend="lite"`` but ``mindspore_lite`` does not import.
        ValueError: unknown backend.
    """
    ids = np.asarray(input_ids, dtype=np.int32)
    if backend == "mindspore":
        import mindspore as ms
        from mindspore import nn

        out = nn.GraphCell(ms.load(path))(ms.Tensor(ids))
        logits = (out[0] if isinstance(out, (tuple, list)) else out).asnumpy()
    elif backend == "lite":
        if not lite_available():
            raise RuntimeError("backend 'lite' needs the mindspore_lite package, which does not import here "
                               "(no wheel for this Python); use backend 'mindspore'")
        import mindspore_lite as mslite

        context = mslite.Context()
        context.target = ["cpu"]
        model = mslite.Model()
        model.build_from_file(path, mslite.ModelType.MINDIR, context)
        inputs = model.get_inputs()
        inputs[0].set_data_from_numpy(ids)
        logits = model.predict(inputs)[0].get_data_to_numpy()
    else:
        raise ValueError(f"unknown backend {backend!r}: use 'mindspore' or 'lite'")
    return logits.reshape(ids.shape[0], ids.shape[1], -1)


def unmerged_logits(config_path: str, base_ckpt: str, lora_ckpt: str | None, input_ids: np.ndarray) -> np.ndarray:
    """Logits ``[batch, seq, vocab]`` of the YAML's model with LoRA cells (not merged), in eval mode."""
    import mindspore as ms

    ids = np.asarray(input_ids, dtype=np.int32)
    model = build_inference_model(config_path, [base_ckpt] + ([lora_ckpt] if lora_ckpt else []),
                                  seq_length=ids.shape[1], batch_size=ids.shape[0], with_lora=bool(lora_ckpt))
    out = model(ms.Tensor(ids))
    return (out[0] if isinstance(out, (tuple, list)) else out).asnumpy().reshape(ids.shape[0], ids.shape[1], -1)


def check_parity(config_path: str, base_ckpt: str, lora_ckpt: str | None, mindir: str, seq_length: int | None = None,
                 batch_size: int = 1, seed: int = 0, backend: str = "mindspore") -> dict:
    """Compare the MindIR's logits with the unmerged model's on one seeded random prompt.

    Args:
        seq_length, batch_size: the shape the MindIR was exported with (default: the YAML's seq_length, 1).

    The prompt avoids ``pad_token_id`` (MindFormers masks that id as an attention key, which would make
    the comparison depend on padding).

    Returns:
        ``{"rel_err": ||a - b|| / ||b||, "max_abs": float, "argmax_agree": fraction of positions}``.
    """
    cfg = _model_config(config_path, seq_length, batch_size)
    batch, seq = batch_size, int(cfg["seq_length"])
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, int(cfg["vocab_size"]), (batch, seq)).astype(np.int32)
    ids[ids == int(cfg.get("pad_token_id", 0))] += 1
    got = run_mindir(mindir, ids, backend)
    ref = unmerged_logits(config_path, base_ckpt, lora_ckpt, ids)
    return {"rel_err": float(np.linalg.norm(got - ref) / np.linalg.norm(ref)),
            "max_abs": float(np.abs(got - ref).max()),
            "argmax_agree": float((got.argmax(-1) == ref.argmax(-1)).mean())}


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.export.export_mindir", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (model.model_config, pet_config)")
    parser.add_argument("--load_checkpoint", required=True, help="MindFormers base checkpoint")
    parser.add_argument("--lora_checkpoint", help="LoRA checkpoint of the run (lora.ckpt); omit for the base")
    parser.add_argument("--output", required=True, help="MindIR file to write (*.mindir)")
    parser.add_argument("--seq_length", type=int, help="graph input length (default: the YAML's seq_length)")
    parser.add_argument("--batch_size", type=int, default=1, help="graph batch size")
    parser.add_argument("--check_parity", action="store_true",
                        help="load the MindIR back and compare logits with the unmerged model")
    parser.add_argument("--backend", default="mindspore", choices=("mindspore", "lite"),
                        help="runtime for --check_parity (lite: needs mindspore_lite, untested here)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    # MindFormers writes its logs (and get_pet_model its adapter_config.json) there, not into the cwd.
    os.environ.setdefault("LOCAL_DEFAULT_PATH", os.path.join(tempfile.gettempdir(), "mindformers_export"))
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    with reported_as(UserError, FileNotFoundError, ValueError), reported_as(Failure, RuntimeError):
        export_mindir(args.config, args.load_checkpoint, args.output, args.lora_checkpoint, args.seq_length,
                      args.batch_size)
        print(f"wrote {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB)")
        if args.check_parity:
            p = check_parity(args.config, args.load_checkpoint, args.lora_checkpoint, args.output,
                             args.seq_length, args.batch_size, backend=args.backend)
            print(f"parity vs unmerged model ({args.backend}): rel err {p['rel_err']:.2e}, max abs "
                  f"{p['max_abs']:.2e}, argmax agreement {p['argmax_agree']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
