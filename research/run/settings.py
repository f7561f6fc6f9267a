"""The settings of a run, resolved once from the command line: defaults, ``--smoke`` and conflicts.

Rules (each has a unit test in tests/run/test_run_settings.py):
- ``--smoke`` only changes defaults (tiny config, 400 samples, 20 eval items, 8 steps, 24 new tokens);
  an option given explicitly wins over it, e.g. ``--smoke --stop_step 3`` trains 3 steps.
- ``--resume``/``--save_steps`` with ``--backend torch``: an error (torch_finetune has no checkpoint resume).
- ``--config`` without ``--load_checkpoint``: the embedded SmolLM2 weights are used only when the YAML
  has SmolLM2-135M's dimensions; any other YAML is an error (``--smoke``: seeded random weights).
- ``--base_gguf FILE`` / ``--base_hf DIR``: the base model from a file, its family (Llama or Qwen2) read from
  it (``research.run.base_file``); each excludes the other, ``--load_checkpoint`` and ``--smoke``. Without
  ``--config`` the run trains on a YAML derived from the file (``logs/<run-id>/base_model.yaml``); a given
  ``--config`` must have the file's dims (the error names every key that differs). The template defaults
  to chatml for a Qwen2 file.
- ``--device cuda`` means the torch backend; with an explicit ``--backend mindformers`` it is an error.
- ``--quantization nf4|int8`` (QLoRA, research/llama3/train/quantization.py) means the torch backend too; with an
  explicit ``--backend mindformers`` it is an error (MindFormers trains unquantized bases only).
- ``--eval_data`` replaces the held-out split, so an explicit ``--eval_size`` beside it is an error.
- ``seq_length`` is the YAML's ``model.model_config.seq_length`` (``base_config`` resolved); the tokenizer is the YAML's, its file
  ``--vocab_file`` when given (a Llama3Tokenizer or Qwen2Tokenizer YAML with an empty ``vocab_file`` needs it).
- Evaluation runs on MindFormers when the YAML's ``context.device_target`` is Ascend, else transformers.
- ``--task auto`` (default): logic when an input file has Tianchi records (``preprocess.readers``);
  which graders run is decided after preprocess from the held-out items (``research.run.stages.evaluate.eval_graders``).
- Logic input on the embedded SmolLM2 without ``--config`` trains with ``seq_length`` 512
  (configs/smollm2_135m/finetune_lora_cpu_seq512.yaml: 256 fits 22% of Tianchi prompts, 512 80%);
  ``--smoke``: configs/tiny/finetune_lora_cpu_seq512.yaml.
- Logic answers are a letter: ``eval.logic`` gets 16 new tokens (256 with ``--logic_style thinking``)
  unless ``--max_new_tokens`` is given.
- ``--bags N`` (N >= 2) votes with ``eval.logic``, so it needs logic input; ``--bag_fraction`` needs ``--bags``.
- ``--target_style pot`` trains on expressions (preprocess/answer/pot.py), ``pot_cot`` on the expression and then the
  CoT that computes it; both evaluate with ``eval.math --mode pot`` (tool-free and tool-assisted columns).
  ``--cot_style`` picks the text of CoT targets, so beside ``pot`` it is an error. ``--eval_limit N`` evaluates the first N items of the eval file (>= 1);
  with ``--eval_data`` it defaults to the held-out split's size (100: a standard error of about 2 points at 5%),
  so a 1,000-item file does not turn a 25-minute job into hours.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from preprocess.config import COT_STYLES, TARGET_STYLES  # python -m preprocess's choices
from preprocess.logic import STYLES
from preprocess.readers import read_records
from preprocess.templates import TEMPLATES
from research.llama3.config.model_config import eval_backend_for, read_config, read_model_config
from research.llama3.train.quantization import QUANTIZATIONS
from research.run.base_file import BASE_FILE_OPTIONS, FAMILY_TEMPLATES, base_file_option, check_fits, file_key
from research.rundir.layout import (DEFAULT_CONFIG, LOGIC_CONFIG, SMOKE_CONFIG, SMOKE_CONFIG_DP2,
                                 SMOKE_LOGIC_CONFIG)

# The vicuna frame without its system sentence (29 SmolLM2 tokens of every sample and prediction);
# a run records its template and evaluates with it (preprocess.templates).
RUN_TEMPLATE = "vicuna_nosys"
# Settings whose command-line flag has another name (``--num_samples`` means logic votes in eval.logic).
FLAGS = {"num_samples": "corpus_size"}
DEFAULTS = {"num_samples": 3000, "eval_size": 100, "stop_step": 200, "max_new_tokens": 192, "seed": 0,
            "worker_num": 1, "device": "cpu", "template": RUN_TEMPLATE, "task": "auto",
            "bags": 0, "bag_fraction": 0.8, "logic_style": "plain",
            "target_style": "pot_cot", "cot_style": "steps", "quantization": "none"}
# The math job's own defaults (issue 22, docs/recipe_runs.md). Fixed-width digit targets: their
# expressions score 94% tool-assisted after 180 steps, and their digits need ~300-400 steps to score
# tool-free (--stop_step 400: 13% tool-free on 100 real items, a ~38-minute job). 150 steps are what
# fits the 25-minute job on 2 CPU cores: the measured 180-step job took 1,573 s (data 44 s, first step with compilation ~180 s, then
# ~5.2 s a step, base eval 120 s, after eval 302 s); 30 fewer steps save ~155 s.
MATH_DEFAULTS = {"stop_step": 150, "cot_style": "digits"}
SMOKE_DEFAULTS = {"num_samples": 400, "eval_size": 20, "stop_step": 8, "max_new_tokens": 24}
BACKENDS = ("mindformers", "torch")
EVAL_BACKENDS = ("transformers", "mindformers")
TASKS = ("auto", "math", "logic")  # research.run.stages.evaluate.EVAL_PLANS has one plan per grader
# Generation budget of eval.logic per logic style: a plain answer is one letter.
LOGIC_MAX_NEW_TOKENS = {"plain": 16, "thinking": 256}
# Dimensions that decide whether the embedded SmolLM2 weights fit a YAML.
SMOLLM2_DIMS = ("hidden_size", "num_layers", "num_heads", "n_kv_heads", "vocab_size", "intermediate_size")


class SettingsError(ValueError):
    """Conflicting or invalid run options; the message names the options involved."""


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a run's outputs; recorded as ``settings`` in ``run.json``.

    Paths are absolute strings. ``base_source`` is ``given`` (``--load_checkpoint``), ``random_init``
    (``--smoke``), ``smollm2_gguf`` (the embedded GGUF converted once into .cache/base/), or ``gguf`` /
    ``hf`` (``--base_gguf`` / ``--base_hf``: ``base_file``, converted once into .cache/base/ under
    ``base_file_key``, its sha256 or stamps: ``research.run.base_file.file_key``).
    ``logic_input``: the input has Tianchi logic records (``--task logic``, or detected under ``auto``).
    ``logic_votes``: ``eval.logic --num_samples`` (None: its CPU/accelerator default).
    ``bags``: adapters trained on ``bag_fraction`` random subsets (0: none), each in ``bags/bag_NN/``.
    ``quantization``: the frozen base's bitsandbytes quantization on the torch backend (``none``, ``nf4``, ``int8``).
    """

    config: str
    base_source: str
    load_checkpoint: str | None
    vocab_file: str | None
    template: str
    seq_length: int
    seed: int
    data: tuple[str, ...]
    num_samples: int
    eval_size: int
    eval_data: str | None
    stop_step: int
    save_steps: int | None
    max_new_tokens: int
    worker_num: int
    backend: str
    device: str
    eval_backend: str
    task: str
    logic_input: bool = False
    logic_style: str = "plain"
    logic_max_new_tokens: int = LOGIC_MAX_NEW_TOKENS["plain"]
    logic_votes: int | None = None
    bags: int = 0
    bag_fraction: float = 0.8
    smoke: bool = False
    # Defaults keep run.json files written before these options readable (RunSettings.from_dict).
    target_style: str = "cot"
    cot_style: str = "steps"
    eval_limit: int | None = None
    packing: bool = False
    quantization: str = "none"
    base_file: str | None = None
    base_file_key: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"] = list(self.data)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSettings":
        return cls(**{**d, "data": tuple(d.get("data") or ())})


def _existing(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    if not os.path.exists(path):
        raise SettingsError(f"{option} {path}: no such file")
    return os.path.abspath(path)


def fits_smollm2(config: dict) -> bool:
    """True when a YAML's model dimensions are SmolLM2-135M's (the default config's), so the embedded
    GGUF's weights load into it."""
    ours = config["model"]["model_config"]
    smollm2 = read_model_config(DEFAULT_CONFIG)
    return all(ours.get(k) == smollm2.get(k) for k in SMOLLM2_DIMS)


def dense_attention(config: dict) -> bool:
    """Whether the YAML's model runs MindFormers' dense attention (``use_flash_attention`` off, the CPU
    YAMLs), the path whose additive mask packed records carry (``research.llama3.records.mindrecord``)."""
    return not (config.get("model") or {}).get("model_config", {}).get("use_flash_attention", False)


def _given(options: dict) -> dict:
    return {k: v for k, v in options.items() if v is not None and v is not False}


def check_option_conflicts(options: dict) -> str:
    """Reject pairs of options that contradict each other (no files read); return the training backend.

    Raises:
        SettingsError: naming both options.
    """
    given = _given(options)
    check_base_options(given)
    device = given.get("device", DEFAULTS["device"])
    quantization = given.get("quantization", DEFAULTS["quantization"])
    if quantization not in QUANTIZATIONS:
        raise SettingsError(f"--quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if "backend" in given:
        backend = given["backend"]
        if device == "cuda" and backend != "torch":
            raise SettingsError(f"--device cuda runs on the torch backend; --backend {backend} cannot use it")
        if quantization != "none" and backend != "torch":
            raise SettingsError(f"--quantization {quantization} (bitsandbytes QLoRA) runs on the torch backend; "
                                f"--backend {backend} trains unquantized bases only")
    else:
        backend = "torch" if device == "cuda" or quantization != "none" else "mindformers"
    if backend not in BACKENDS:
        raise SettingsError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        for name in ("resume", "save_steps"):
            if name in given:
                raise SettingsError(f"--{name} is not supported with --backend torch (research/llama3/"
                                    f"torch_finetune.py saves no resumable checkpoints); use --backend mindformers")
    if given.get("worker_num", 1) < 1:
        raise SettingsError(f"--worker_num must be >= 1, got {given['worker_num']}")
    if "eval_data" in given and "eval_size" in given:
        raise SettingsError("--eval_data evaluates on that file instead of a held-out split; "
                            "--eval_size holds one out: give one of them")
    if given.get("target_style") == "pot" and "cot_style" in given:  # pot_cot keeps a CoT after the expression
        raise SettingsError("--cot_style chooses the text of CoT targets; --target_style pot trains on "
                            "expressions instead: give one of them")
    if given.get("eval_limit", 1) < 1:
        raise SettingsError(f"--eval_limit must be >= 1, got {given['eval_limit']}")
    if "data" in given and "num_samples" in given:
        raise SettingsError("--corpus_size sizes the generated corpus; with --data nothing is generated")
    check_logic_options(given)
    return backend


def check_base_options(given: dict) -> None:
    """``--base_gguf``/``--base_hf`` choose the base model, as ``--load_checkpoint`` and ``--smoke``'s
    random weights do: one of them at most (no files read).

    Raises:
        SettingsError: naming both options.
    """
    chosen = [k for k in (*BASE_FILE_OPTIONS, "load_checkpoint", "smoke") if k in given]
    if len(chosen) > 1 and chosen[0] in BASE_FILE_OPTIONS:
        raise SettingsError(f"--{chosen[0]} and --{chosen[1]} both choose the base model: give one of them")


def check_logic_options(given: dict) -> None:
    """The logic and bagging options' own rules (no files read).

    Raises:
        SettingsError: naming the option.
    """
    if "logic_style" in given and given["logic_style"] not in STYLES:
        raise SettingsError(f"--logic_style must be one of {STYLES}, got {given['logic_style']!r}")
    if given.get("logic_votes", 1) < 1:
        raise SettingsError(f"--logic_votes must be >= 1, got {given['logic_votes']}")
    if "bags" in given and given["bags"] < 2:
        raise SettingsError(f"--bags must be >= 2 (adapters that vote together), got {given['bags']}")
    if "bag_fraction" in given:
        if "bags" not in given:
            raise SettingsError("--bag_fraction sizes the subsets of --bags N: give --bags too")
        if not 0 < given["bag_fraction"] <= 1:
            raise SettingsError(f"--bag_fraction must be in (0, 1], got {given['bag_fraction']}")
    if "bags" in given and given.get("task") == "math":
        raise SettingsError("--bags votes with eval.logic over the adapters; --task math has no logic to vote on")


def has_logic_records(paths) -> bool:
    """True when any of the files has a Tianchi logic record (as ``python -m preprocess`` reads them).

    Raises:
        SettingsError: a file does not exist.
    """
    for path in paths:
        _existing(path, "--data")
    return any("logic" in record for record in read_records(list(paths))[0])


def logic_input(options: dict) -> bool:
    """Whether the run trains on logic: ``--task logic``, or ``auto`` with Tianchi records in ``--data``.

    Raises:
        SettingsError: unknown ``--task``, or a ``--data`` file does not exist.
    """
    task = options.get("task") or DEFAULTS["task"]
    if task not in TASKS:
        raise SettingsError(f"--task {task!r} unknown; known: {', '.join(TASKS)}")
    if task != "auto":
        return task == "logic"
    return has_logic_records(options.get("data") or ())


def config_path_for(options: dict, logic: bool | None = None) -> str:
    """The YAML a run uses: ``--config``, else the smoke (tiny, data-parallel with 2 workers) or default
    one, with seq_length 512 for logic input (``logic``; None: decided by :func:`logic_input`).

    Raises:
        SettingsError: ``--config`` names no file.
    """
    if options.get("config"):
        return _existing(options["config"], "--config")
    if logic is None:
        logic = logic_input(options)
    if options.get("smoke"):
        if options.get("worker_num") == 2:
            return str(SMOKE_CONFIG_DP2)
        return str(SMOKE_LOGIC_CONFIG if logic else SMOKE_CONFIG)
    return str(LOGIC_CONFIG if logic else DEFAULT_CONFIG)


def resolve(options: dict) -> RunSettings:
    """Resolve the finetune options into :class:`RunSettings`.

    Args:
        options: the CLI's values, None for an option not given (``data`` a list or None, ``smoke``
            and ``resume`` bools).

    Raises:
        SettingsError: a conflicting pair (the message names both) or a missing file.
    """
    given = _given(options)
    smoke = bool(options.get("smoke"))
    logic = logic_input(options)
    defaults = {**DEFAULTS, **(SMOKE_DEFAULTS if smoke else {} if logic else MATH_DEFAULTS)}

    def pick(name):
        return given.get(name, defaults.get(name))

    device, backend = pick("device"), check_option_conflicts(options)
    worker_num = pick("worker_num")

    if given.get("bags") and not logic:
        raise SettingsError("--bags votes with eval.logic over the adapters, but the input has no Tianchi logic "
                            "records (give logic --data, or --task logic)")
    config_path = config_path_for(options, logic)
    try:
        config = read_config(config_path)  # base_config resolved as MindFormers does
    except (OSError, ValueError) as exc:
        raise SettingsError(f"--config {config_path}: {exc}") from None
    try:
        seq_length = int(config["model"]["model_config"]["seq_length"])
    except (KeyError, TypeError):
        raise SettingsError(f"--config {config_path}: no model.model_config.seq_length") from None

    load_checkpoint = _existing(given.get("load_checkpoint"), "--load_checkpoint")
    base_option, base_file, base_key, family = base_file_option(given), None, None, None
    if base_option:
        base_file = _existing(given[base_option], f"--{base_option}")
        try:
            family = check_fits(config, config_path, base_option, base_file).family
        except (OSError, ValueError) as exc:
            raise SettingsError(str(exc)) from None
        base_source, base_key = BASE_FILE_OPTIONS[base_option], file_key(BASE_FILE_OPTIONS[base_option], base_file)
    elif load_checkpoint:
        base_source = "given"
    elif smoke:
        base_source = "random_init"
    elif fits_smollm2(config):
        base_source = "smollm2_gguf"
    else:
        raise SettingsError(f"--config {config_path} is not a SmolLM2-135M model, so the embedded SmolLM2 "
                            f"weights do not fit it: give its base checkpoint with --load_checkpoint")

    vocab_file = _existing(given.get("vocab_file"), "--vocab_file")
    tokenizer = ((config.get("processor") or {}).get("tokenizer") or {})
    needs = {"Llama3Tokenizer": "Meta's tokenizer.model", "Qwen2Tokenizer": "the Qwen2 directory's vocab.json"}
    if tokenizer.get("type") in needs and not (vocab_file or tokenizer.get("vocab_file")):
        raise SettingsError(f"--config {config_path} has processor.tokenizer.vocab_file '' ({tokenizer['type']}): "
                            f"give {needs[tokenizer['type']]} with --vocab_file")

    template = given.get("template") or FAMILY_TEMPLATES.get(family) or defaults["template"]
    if template not in TEMPLATES:
        raise SettingsError(f"--template {template!r} unknown; known: {', '.join(sorted(TEMPLATES))}")
    for name, known in (("target_style", TARGET_STYLES), ("cot_style", COT_STYLES)):
        if pick(name) not in known:
            raise SettingsError(f"--{name} {pick(name)!r} unknown; known: {', '.join(known)}")
    style = pick("logic_style")

    eval_data = _existing(given.get("eval_data"), "--eval_data")
    data = tuple(_existing(p, "--data") for p in (given.get("data") or ()))

    return RunSettings(
        config=config_path, base_source=base_source, load_checkpoint=load_checkpoint, vocab_file=vocab_file,
        template=template, seq_length=seq_length, seed=pick("seed"), data=data,
        num_samples=pick("num_samples"), eval_size=0 if eval_data else pick("eval_size"), eval_data=eval_data,
        stop_step=pick("stop_step"), save_steps=given.get("save_steps"), max_new_tokens=pick("max_new_tokens"),
        worker_num=worker_num, backend=backend, device=device, eval_backend=eval_backend_for(config_path),
        task=pick("task"), logic_input=logic, logic_style=style,
        logic_max_new_tokens=given.get("max_new_tokens", LOGIC_MAX_NEW_TOKENS[style]),
        logic_votes=given.get("logic_votes"), bags=pick("bags"), bag_fraction=pick("bag_fraction"), smoke=smoke,
        target_style=pick("target_style"), cot_style=pick("cot_style"), quantization=pick("quantization"),
        eval_limit=given.get("eval_limit", pick("eval_size") if eval_data else None),
        packing=dense_attention(config) and backend == "mindformers" and not given.get("no_packing"),
        base_file=base_file, base_file_key=base_key)


def resume_options_conflict(options: dict) -> list[str]:
    """Options given beside ``--resume`` other than the run's name: a resumed run keeps its recorded
    settings, so each one is a conflict to report."""
    allowed = {"resume", "run_id", "run_dir"}
    return sorted(f"--{FLAGS.get(k, k)}" for k, v in options.items()
                  if k not in allowed and v is not None and v is not False)
