"""Read and write MindSpore checkpoints as ``{MindFormers Parameter.name: numpy array}`` dicts.

Every converter in ``research.llama3`` goes through these two functions, so dtype handling
(numpy has no bfloat16) and atomic writes live in one place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["load_ms_checkpoint", "save_ms_checkpoint", "MS_DTYPES"]

# Names accepted for a checkpoint's storage dtype (``--dtype`` of the CLIs).
MS_DTYPES = ("float32", "float16", "bfloat16")


def load_ms_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Model tensors of a MindSpore checkpoint as float32 numpy arrays.

    Only entries named ``model.*`` or ``lm_head.*`` are kept, which drops
    training state a trainer may have stored alongside (``adam_m.*``,
    ``global_step``, ``scale_sense`` ...). float16 and bfloat16 entries are
    widened to float32 (exactly).

    Args:
        path: a ``.ckpt`` file.

    Returns:
        MindFormers ``Parameter.name`` -> float32 array (original shape).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    import mindspore as ms

    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    params = ms.load_checkpoint(os.fspath(path))
    return {
        # numpy has no bfloat16, so the cast happens on the MindSpore side.
        name: np.asarray(param.astype(ms.float32).asnumpy(), dtype=np.float32)
        for name, param in params.items()
        if name.startswith(("model.", "lm_head."))
    }


def _float32_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # torch: numpy() cannot take bfloat16
        return array.detach().to("cpu").float().numpy()
    return np.asarray(array, dtype=np.float32)


def save_ms_checkpoint(tensors: dict[str, np.ndarray], path: str | os.PathLike,
                       dtype: str = "float32") -> Path:
    """Write ``tensors`` as a MindSpore checkpoint, atomically.

    The file is written to a unique temporary file in the destination
    directory and renamed over ``path``, so readers never see a partial file
    and concurrent writers to the same target do not clobber each other.

    Args:
        tensors: MindFormers ``Parameter.name`` -> numpy array or torch tensor (any float dtype,
            bfloat16 included); each is converted on its own, so a bfloat16 source converted to a
            bfloat16 checkpoint never holds a float32 copy of the whole model.
        path: destination; must end in ``.ckpt`` (MindSpore appends the suffix
            otherwise and refuses to load files without it).
        dtype: storage dtype, one of ``MS_DTYPES``.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: ``path`` lacks ``.ckpt``, ``dtype`` is unknown, or ``tensors`` is empty.
    """
    import mindspore as ms

    path = Path(path)
    if path.suffix != ".ckpt":
        raise ValueError(f"output checkpoint must end in .ckpt, got {path}")
    if dtype not in MS_DTYPES:
        raise ValueError(f"unknown checkpoint dtype {dtype!r}; known: {MS_DTYPES}")
    if not tensors:
        raise ValueError(f"no tensors to write to {path}")
    ms_dtype = getattr(ms, dtype)
    params = [{"name": name, "data": ms.Tensor(_float32_numpy(array), dtype=ms_dtype)}
              for name, array in tensors.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp.ckpt")
    os.close(fd)
    try:
        ms.save_checkpoint(params, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
