"""A MindSpore training callback that uploads each epoch's checkpoints to OBS in the background.

Like MindFormers' ``ObsMonitor`` (which copies the output directory with moxing at each epoch end), but
on ``esdk-obs-python`` with resumable, verified uploads, and off the training thread: the epoch-end hook
only looks for new or changed ``*.ckpt`` files and queues them; one worker thread uploads them in order.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindspore.train.callback import Callback

from .settings import load_settings
from .store import ObsStore, UploadResult

log = logging.getLogger(__name__)


@MindFormerRegister.register(MindFormerModuleType.CALLBACK)
class ObsCheckpointUploader(Callback):
    """Upload checkpoints written under ``ckpt_dir`` to ``<store prefix>/<run_id>/<subdir>/`` each epoch.

    Place it after the checkpoint callback (``CheckpointMonitor``/``ModelCheckpoint``) in the callback list
    so the epoch's file exists when ``on_train_epoch_end`` runs. A file is queued again only when its
    size or mtime changed. Upload errors do not stop training: they are logged and collected in
    ``errors``; ``on_train_end`` waits for the queue and raises if ``strict`` and any upload failed.

    Registered with MindFormers, so a YAML ``callbacks:`` list can name it once this module is imported::

        - type: ObsCheckpointUploader
          store: obs://bucket/prefix      # settings from OBS_* / $OBS_CONFIG
          ckpt_dir: ./output/checkpoint
          run_id: my-run

    Args:
        store: where to upload: an ``ObsStore`` or an ``obs://bucket/prefix`` URL (then settings come from
            ``load_settings()``). Its client is used from the worker thread only.
        ckpt_dir: directory the checkpoint callback writes to (searched recursively for ``*.ckpt``).
        run_id: run id (first key level under the store's prefix).
        subdir: key level between the run id and the file's path relative to ``ckpt_dir``.
        strict: raise ``RuntimeError`` at train end when an upload failed.
    """

    def __init__(self, store: ObsStore | str, ckpt_dir: str | os.PathLike, run_id: str, subdir: str = "checkpoints",
                 strict: bool = True):
        super().__init__()
        self.store = ObsStore(load_settings(), store) if isinstance(store, str) else store
        self.ckpt_dir = Path(ckpt_dir)
        self.run_id = run_id
        self.subdir = subdir
        self.strict = strict
        self.results: list[UploadResult] = []
        self.errors: list[str] = []
        self.hook_seconds: list[float] = []  # time spent inside on_train_epoch_end, for the training thread
        self._seen: dict[Path, tuple[int, int]] = {}
        self._futures: list[Future] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obs-upload")

    def _upload(self, path: Path) -> None:
        key = self.store.url.key(self.run_id, self.subdir, path.relative_to(self.ckpt_dir).as_posix())
        try:
            self.results.append(self.store.upload_file(path, key))
        except Exception as e:  # keep training alive; reported at train end
            if isinstance(e, FileNotFoundError) and not path.exists():
                # Rotated away by keep_checkpoint_max while queued: a newer checkpoint replaces it.
                log.info("skipped %s: removed before its upload started", path)
                return
            log.error("background upload of %s failed: %s", path, e)
            self.errors.append(f"{path}: {e}")

    def queue_new_checkpoints(self) -> int:
        """Queue ``*.ckpt`` files that are new or changed since the last call; return how many."""
        queued = 0
        for path in sorted(self.ckpt_dir.rglob("*.ckpt")):
            try:
                st = path.stat()
            except FileNotFoundError:  # rotated away by keep_checkpoint_max meanwhile
                continue
            state = (st.st_size, st.st_mtime_ns)
            if self._seen.get(path) != state:
                self._seen[path] = state
                self._futures.append(self._pool.submit(self._upload, path))
                queued += 1
        return queued

    def on_train_epoch_end(self, run_context):
        t0 = time.perf_counter()
        self.queue_new_checkpoints()
        self.hook_seconds.append(time.perf_counter() - t0)

    def on_train_end(self, run_context):
        self.queue_new_checkpoints()
        self.wait()

    def wait(self) -> None:
        """Block until queued uploads finished; raise ``RuntimeError`` if ``strict`` and any failed."""
        for future in self._futures:
            future.result()
        self._pool.shutdown(wait=True)
        if self.strict and self.errors:
            raise RuntimeError(f"{len(self.errors)} checkpoint upload(s) to OBS failed: {'; '.join(self.errors)}")
