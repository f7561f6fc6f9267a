"""What a MindFormers 1.9 YAML may contain, read from MindFormers itself (nothing hand-listed).

* Top level: ``GeneralConfig``'s keys and the section names of MindFormers' config template
  (``mindformers.tools.register.template``), plus the run keys of ``MFContextConfig`` and
  ``ConfigArguments`` (``mindformers.core.config_args``).
* Sections the template checks strictly (``runner_config``, ``parallel_config``, ``recompute_config``...):
  the template class's keys.
* ``context``: ``ContextConfig``/``MFContextConfig`` kwargs and the keys ``build_context`` routes to
  MindSpore (``_MSContextApplier._migrate``); ``parallel``: ``ParallelContextConfig`` kwargs and the keys
  of MindSpore's ``set_auto_parallel_context``.
* A mapping with ``type``: the class registered under that name (``MindFormerRegister``) for the
  section's module type, and its constructor's parameters, following ``**kwargs`` up the MRO; for a
  model config (``LlamaConfig``) also every attribute of a default instance (``PretrainedConfig`` pops
  e.g. ``pet_config``, ``checkpoint_name_or_path`` from ``**kwargs``).
* ``pet_config``: ``pet_type`` among the PET types ``mindformers.pet.pet_model`` builds a model for
  (anything else silently trains the whole model), keys of that type's config class.
"""
from __future__ import annotations

import functools
import inspect

from preprocess.cli import quiet_imports, wants_verbose

# The registry module type each typed section is built from (MindFormers' build_* call for it).
SECTION_MODULE_TYPES = {
    "trainer": "trainer",
    "optimizer": "optimizer",
    "lr_schedule": "lr",
    "runner_wrapper": "wrapper",
    "runner_wrapper.scale_sense": "wrapper",
    "metric": "metric",
    "callbacks[]": "callback",
    "eval_callbacks[]": "callback",
    "train_dataset_task": "dataset",
    "eval_dataset_task": "dataset",
    "train_dataset.data_loader": "dataset_loader",
    "eval_dataset.data_loader": "dataset_loader",
    "model.model_config": "config",
    "model.arch": "models",
    "processor": "processor",
}
# MindFormers' dataset classes pop these from data_loader before building it (their docstring:
# "the string "type", "dataset_dir", "dataset_files" and "shuffle" are the keys can be parsed").
DATA_LOADER_EXTRA = {"dataset_dir", "dataset_files", "shuffle"}


@functools.lru_cache(maxsize=1)
def _mindformers():
    """Import MindFormers and the suite's modules that register classes with it (callbacks); the first
    MindFormers import of most CLIs, so its import-time warnings are hidden here (``--verbose`` shows them)."""
    with quiet_imports(wants_verbose(None)):
        import mindformers  # noqa: F401  (fills MindFormerRegister.registry)
        from research.llama3.train import callbacks  # noqa: F401  LossJsonlMonitor, EpochLoraCheckpoint, CheckpointMonitor
        from research.obs import callback  # noqa: F401  ObsCheckpointUploader
        from mindformers.tools.register import MindFormerRegister

    return MindFormerRegister


def constructor_params(cls) -> set[str]:
    """Keyword parameters ``cls(...)`` accepts: ``__new__``/``__init__`` of ``cls`` and, while a
    constructor passes ``**kwargs`` on, of its bases."""
    names = set()
    for klass in cls.__mro__:
        if klass is object:
            break
        forwards = False
        found = False
        for attr in ("__new__", "__init__"):
            fn = klass.__dict__.get(attr)
            if fn is None:
                continue
            fn = getattr(fn, "__func__", fn)
            try:
                params = inspect.signature(fn).parameters.values()
            except (TypeError, ValueError):
                continue
            found = True
            names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            forwards |= any(p.kind == p.VAR_KEYWORD for p in params)
        if found and not forwards:
            break
    return names - {"self", "cls"}


@functools.lru_cache(maxsize=None)
def registered(module_type: str) -> dict:
    """``{name: class}`` registered with MindFormers under ``module_type`` (legacy and mcore names)."""
    return dict(_mindformers().registry.get(module_type, {}))


def find_class(module_type: str, name: str):
    """The class registered as ``name`` (or its ``mcore_`` form, ``use_legacy: False``), or None."""
    classes = registered(module_type)
    return classes.get(name) or classes.get(f"mcore_{name}")


@functools.lru_cache(maxsize=None)
def class_keys(module_type: str, name: str) -> frozenset[str]:
    """Keys a ``type: name`` mapping of ``module_type`` may hold (``type`` included)."""
    cls = find_class(module_type, name)
    keys = constructor_params(cls) | {"type"}
    if module_type == "config":
        try:
            keys |= {k for k in vars(cls()) if not k.startswith("_")}
        except TypeError:  # a config class without defaults for every parameter: its signature must do
            pass
    if module_type == "dataset_loader":
        keys |= DATA_LOADER_EXTRA
    return frozenset(keys)


@functools.lru_cache(maxsize=1)
def top_level_keys() -> frozenset[str]:
    """Keys allowed at the top of a YAML: general settings and section names."""
    _mindformers()
    from mindformers.core.config_args import ConfigArguments, MFContextConfig
    from mindformers.tools.register.template import CONFIG_NAME_TO_CLASS, GeneralConfig

    return frozenset((set(GeneralConfig.keys()) | set(CONFIG_NAME_TO_CLASS) | set(MFContextConfig.get_supported_kwargs())
                      | set(ConfigArguments.get_supported_kwargs())) - {"general_config"})


@functools.lru_cache(maxsize=1)
def section_keys() -> dict[str, frozenset[str]]:
    """Closed key sets of untyped sections: ``{section: keys}``."""
    _mindformers()
    import mindspore.parallel._auto_parallel_context as ms_parallel
    from mindformers.core.config_args import ContextConfig, MFContextConfig, ParallelContextConfig
    from mindformers.core.context.build_context import _MSContextApplier
    from mindformers.tools.register.template import CONFIG_NAME_TO_CLASS

    sections = {name: frozenset(cls.keys()) for name, cls in CONFIG_NAME_TO_CLASS.items()
                if cls._raise_error_for_unexpected_key and name != "general_config"}
    routed = {key for _, keys, _ in _MSContextApplier._migrate for key in keys}
    sections["context"] = frozenset(set(CONFIG_NAME_TO_CLASS["context"].keys()) | set(ContextConfig.get_supported_kwargs())
                                    | set(MFContextConfig.get_supported_kwargs()) | routed)
    sections["parallel"] = frozenset(set(CONFIG_NAME_TO_CLASS["parallel"].keys())
                                     | set(ParallelContextConfig.get_supported_kwargs())
                                     | set(ms_parallel._set_auto_parallel_context_func_map))
    return sections


@functools.lru_cache(maxsize=1)
def run_modes() -> tuple[str, ...]:
    """The ``run_mode`` values MindFormers' template knows (others only get a warning from it)."""
    from mindformers.tools.register.template import ConfigTemplate

    return tuple(ConfigTemplate._run_modes)


@functools.lru_cache(maxsize=1)
def pet_types() -> dict:
    """``{pet_type: config class or None}``: the types ``get_pet_model`` turns into a PET model.

    ``slora`` has its own path (``SLoraAdapter.init_slora_config``), so its keys are not checked.
    """
    _mindformers()
    from mindformers.pet.pet_model import PET_TYPE_TO_CONFIG_MAPPING, PET_TYPE_TO_MODEL_MAPPING

    types = {name: PET_TYPE_TO_CONFIG_MAPPING.get(name) for name in PET_TYPE_TO_MODEL_MAPPING}
    types["slora"] = None
    return types


def pet_keys(pet_type: str) -> frozenset[str] | None:
    """Keys of a ``pet_config`` of ``pet_type``, or None when they cannot be derived."""
    cls = pet_types().get(pet_type)
    return frozenset(constructor_params(cls) | {"pet_type"}) if cls else None
