"""Check a MindFormers YAML against the MindFormers 1.9 schema before any heavy work.

MindFormers accepts most misspelt keys silently (``lora_rnak: 16`` leaves the rank at 8, a
``runer_config`` section is dropped as "useless", ``pet_type: lroa`` trains the whole model) or fails
deep inside graph compilation (``seq_lenght``). This module resolves ``base_config`` inheritance the
way ``MindFormerConfig`` does and reports every unknown key, unregistered ``type`` and unknown
``pet_type``/``run_mode`` with the file and line that hold it, the key path and a "did you mean"
suggestion (``difflib``). The allowed keys come from MindFormers itself (``config_schema``).

Usage::

    python -m research.llama3.config.config_check configs/tiny/finetune_lora_cpu.yaml [more.yaml ...]

Exit status: 0 every file passes, 1 problems found (one line each on stderr), 2 a file cannot be read.
Called by ``research.llama3.train.finetune``, the evaluation CLIs' ``--config`` and ``tokenizer_from_config``
(so ``research.llama3.records.mindrecord --config`` is checked too).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import os
import sys

from research.llama3.config import config_schema as schema
from preprocess.cli import Parser

# The ``processor.tokenizer.type`` values research.llama3.tokenizers.tokenizer builds (besides any
# tokenizer MindFormers registers); here, below the tokenizers, so that checking a YAML imports none.
KNOWN_TOKENIZER_TYPES = ("GGUFTokenizer", "Llama3Tokenizer", "Qwen2Tokenizer")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding: ``file`` and 1-based ``line`` (0 when unknown) that hold ``path`` (``a.b[2].c``)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}"


class ConfigError(ValueError):
    """A YAML failed the check; ``problems`` lists every finding, the message one per line."""

    def __init__(self, config_path: str, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{config_path} does not match the MindFormers 1.9 schema "
                         f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  "
                         + "\n  ".join(map(str, problems)))


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _config_files(path: str) -> list[str]:
    """``path`` and its ``base_config`` files, child first (the first file holding a key defines it)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    bases = data.get("base_config", []) if isinstance(data, dict) else []
    files = [path]
    for base in bases if isinstance(bases, list) else [bases]:
        files += _config_files(os.path.join(os.path.dirname(path), base))
    return files


@functools.lru_cache(maxsize=64)
def _node(path: str):
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.compose(fh)


def _locate(files: list[str], keys: tuple) -> tuple[str, int]:
    """The first of ``files`` whose YAML holds the key path ``keys`` (str keys, int list indices),
    and the 1-based line of its last key; ``(files[0], 0)`` when none does."""
    for path in files:
        node = _node(path)
        for key in keys:
            if isinstance(key, int) and getattr(node, "id", "") == "sequence" and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            elif getattr(node, "id", "") == "mapping":
                match = [(k, v) for k, v in node.value if k.value == key]
                if not match:
                    break
                line, node = match[0][0].start_mark.line + 1, match[0][1]
            else:
                break
        else:
            return path, line
    return files[0], 0


class _Checker:
    """Walks one resolved config and collects ``Problem``s; ``files`` locate each key (child first)."""

    def __init__(self, files: list[str]):
        self.files = files
        self.problems: list[Problem] = []

    def report(self, keys: tuple, message: str) -> None:
        path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
        self.problems.append(Problem(*_locate(self.files, keys), path or "(top level)", message))

    def keys(self, section: dict, keys: tuple, allowed, what: str) -> None:
        for key in section:
            if key not in allowed:
                self.report(keys + (key,), f"unknown key in {what}{_suggest(key, allowed)}")

    def typed(self, section, keys: tuple, module_type: str) -> str | None:
        """Check a ``type:`` mapping against the class registered for it; return the type name."""
        if not isinstance(section, dict):
            return None
        name = section.get("type")
        if not isinstance(name, str):
            self.report(keys + ("type",) if "type" in section else keys,
                        f"no 'type' naming a registered MindFormers {module_type} class")
            return None
        if schema.find_class(module_type, name) is None:
            self.report(keys + ("type",), f"{name!r} is not a registered MindFormers {module_type} class"
                        f"{_suggest(name, schema.registered(module_type))}")
            return None
        self.keys(section, keys, schema.class_keys(module_type, name), f"{name}'s parameters")
        return name

    def check(self, config: dict) -> list[Problem]:
        self.keys(config, (), schema.top_level_keys(), "the MindFormers config")
        run_mode = config.get("run_mode")
        if run_mode is not None and run_mode not in schema.run_modes():
            self.report(("run_mode",), f"{run_mode!r} is not one of {', '.join(schema.run_modes())}"
                        f"{_suggest(run_mode, schema.run_modes())}")
        for name, allowed in schema.section_keys().items():
            if isinstance(config.get(name), dict):
                self.keys(config[name], (name,), allowed, f"'{name}'")
        for where, module_type in schema.SECTION_MODULE_TYPES.items():
            head, _, tail = where.partition(".")
            if head.endswith("[]"):
                items = config.get(head[:-2]) or []
                if not isinstance(items, list):
                    self.report((head[:-2],), f"must be a list of mappings with a 'type', got {type(items).__name__}")
                    continue
                for i, item in enumerate(items):
                    if not isinstance(item, dict):
                        self.report((head[:-2], i), f"must be a mapping with a 'type', got {type(item).__name__}")
                    self.typed(item, (head[:-2], i), module_type)
                continue
            section = config.get(head)
            if tail:
                section = section.get(tail) if isinstance(section, dict) else None
            if section is not None and not (head == "processor" and "type" not in section):
                self.typed(section, (head, tail) if tail else (head,), module_type)
        for head in ("train_dataset", "eval_dataset"):
            self.dataset(config, head)
        self.model(config.get("model"))
        self.tokenizer(config.get("processor"))
        return self.problems

    def dataset(self, config: dict, head: str) -> None:
        """``train_dataset`` is the task's ``dataset_config``: its keys are the dataset class's parameters."""
        section, task = config.get(head), config.get(f"{head}_task")
        name = task.get("type") if isinstance(task, dict) else None
        if isinstance(section, dict) and name and schema.find_class("dataset", name):
            self.keys(section, (head,), schema.class_keys("dataset", name) - {"type"}, f"{name}'s dataset_config")

    def model(self, model) -> None:
        if not isinstance(model, dict):
            return
        self.keys(model, ("model",), {"model_config", "arch"}, "'model' (model_config, arch)")
        model_config = model.get("model_config")
        pet = model_config.get("pet_config") if isinstance(model_config, dict) else None
        if not isinstance(pet, dict):
            return
        keys = ("model", "model_config", "pet_config")
        pet_type = pet.get("pet_type")
        if pet_type in schema.pet_types():
            allowed, what = schema.pet_keys(pet_type), f"{pet_type} pet_config"
        else:
            self.report(keys + ("pet_type",), f"{pet_type!r} is not a PET type MindFormers builds (one of "
                        f"{', '.join(schema.pet_types())}; any other value trains the whole model)"
                        f"{_suggest(pet_type, schema.pet_types())}")
            allowed = frozenset().union(*(schema.pet_keys(t) or () for t in schema.pet_types()))
            what = "any PET type's pet_config"
        if allowed:
            self.keys(pet, keys, allowed, what)

    def tokenizer(self, processor) -> None:
        spec = processor.get("tokenizer") if isinstance(processor, dict) else None
        if isinstance(spec, dict):
            known = set(KNOWN_TOKENIZER_TYPES) | set(schema.registered("tokenizer"))
            if spec.get("type") not in known:
                self.report(("processor", "tokenizer", "type"), f"{spec.get('type')!r} is not a known tokenizer"
                            f"{_suggest(spec.get('type'), known)}")


def resolved_config(path: str | os.PathLike) -> dict:
    """The YAML as MindFormers reads it: ``base_config`` files merged in (``MindFormerConfig._file2dict``),
    before MindFormers fills in its defaults.

    Raises:
        FileNotFoundError: the file or a base file is missing; ValueError: not YAML, or not a mapping.
    """
    import yaml

    schema._mindformers()
    from mindformers.tools.register.config import MindFormerConfig

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config not found: {path}")
    try:
        config = MindFormerConfig._file2dict(path)
    except AttributeError:  # yaml.safe_load gave a list/str: MindFormers calls .items() on it
        raise ValueError(f"{path}: not a YAML mapping of MindFormers settings") from None
    except TypeError as e:  # a mapping over a base's list (or the reverse): MindFormers' merge fails
        raise ValueError(f"{path}: cannot be merged with its base_config ({e})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    return dict(config)


def check_config(path: str | os.PathLike) -> list[Problem]:
    """Every problem of the YAML ``path`` (``base_config`` resolved), in file order; empty when it passes.

    Raises:
        FileNotFoundError, ValueError: as ``resolved_config``.
    """
    path = os.fspath(path)
    config = resolved_config(path)
    files = _config_files(path)
    problems = _Checker(files).check(config)
    return sorted(problems, key=lambda p: (files.index(p.file), p.line == 0, p.line))


@functools.lru_cache(maxsize=32)
def _validated(path: str, mtime_ns: int) -> None:
    problems = check_config(path)
    if problems:
        raise ConfigError(path, problems)


def validate_config(path: str | os.PathLike) -> None:
    """Raise ``ConfigError`` (a ValueError listing every problem) unless the YAML passes; a file
    already validated unchanged in this process is not checked again.

    Raises:
        ConfigError; FileNotFoundError, ValueError as ``check_config``.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config not found: {path}")
    _validated(path, os.stat(path).st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class ModelYaml:
    """A MindFormers YAML checked and resolved once: what the model, tokenizer and generation code take
    instead of each re-reading the path. ``config`` is shared by every holder, so it is only read."""

    path: str
    config: dict

    @property
    def model_config(self) -> dict:
        """``model.model_config`` (KeyError without one)."""
        return self.config["model"]["model_config"]


@functools.lru_cache(maxsize=32)
def _model_yaml(path: str, absolute: str, mtime_ns: int) -> ModelYaml:
    _validated(absolute, mtime_ns)
    return ModelYaml(path, resolved_config(path))


def model_yaml(path: str | os.PathLike) -> ModelYaml:
    """The YAML ``path`` checked (``validate_config``) and resolved (``resolved_config``), once per process
    while the file is unchanged.

    Raises:
        ConfigError; FileNotFoundError, ValueError as ``check_config``.
    """
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise FileNotFoundError(f"config not found: {absolute}")
    return _model_yaml(os.fspath(path), absolute, os.stat(absolute).st_mtime_ns)


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.config.config_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", metavar="YAML", help="MindFormers YAML files")
    args = parser.parse_args(argv)
    status = 0
    for path in args.configs:
        try:
            problems = check_config(path)
        except (OSError, ValueError) as e:  # unreadable or unparseable: report, go on with the next file
            print(f"error: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            status = 2
            continue
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            status = max(status, 1)
        else:
            print(f"ok: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
