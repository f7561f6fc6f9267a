"""ObsCheckpointUploader in a real MindSpore training loop: each epoch's checkpoint reaches the local
S3-compatible server, verified, while the epoch-end hook itself returns at once."""
import threading

import numpy as np
import pytest

from research.obs import ObsStore
from research.obs.callback import ObsCheckpointUploader

from tests.research.obs.test_obs_transfer import _md5

pytestmark = pytest.mark.integration


def test_each_epoch_checkpoint_uploaded_in_background(obs_server, tmp_path, conv_ms_cpu):
    ms = conv_ms_cpu
    from mindspore import nn
    from mindspore.dataset import NumpySlicesDataset
    from mindspore.train import Callback, CheckpointConfig, Model, ModelCheckpoint

    ms.set_seed(0)
    # ~9 MB of float32 weights per checkpoint.
    net = nn.SequentialCell(nn.Dense(64, 1024), nn.ReLU(), nn.Dense(1024, 1024), nn.ReLU(), nn.Dense(1024, 1024),
                            nn.ReLU(), nn.Dense(1024, 64))
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    data = NumpySlicesDataset({"x": x, "y": x}, shuffle=False).batch(8)  # 4 steps per epoch
    model = Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), learning_rate=0.01))
    ckpt_dir = tmp_path / "ckpt"
    saver = ModelCheckpoint(prefix="lora", directory=str(ckpt_dir),
                            config=CheckpointConfig(save_checkpoint_steps=4, keep_checkpoint_max=5))
    store = ObsStore(obs_server.settings(task_num=2), "obs://runs-bucket/exp", tmp_path / "rec")
    uploader = ObsCheckpointUploader(store, ckpt_dir, run_id="run-cb")

    # Every upload (the real one) is held until the end of epoch 3: epochs 1 and 2 can only finish
    # if the epoch-end hook does not wait for its upload.
    release = threading.Event()
    upload = store.upload_file
    store.upload_file = lambda path, key: (release.wait(timeout=120), upload(path, key))[1]

    class Probe(Callback):
        def __init__(self):
            super().__init__()
            self.uploaded_at_epoch_end: list[int] = []

        def on_train_epoch_end(self, run_context):
            self.uploaded_at_epoch_end.append(len(uploader.results))
            if run_context.original_args().cur_epoch_num == 3:
                release.set()

    probe = Probe()
    model.train(3, data, callbacks=[saver, uploader, probe], dataset_sink_mode=False)

    local = sorted(p.name for p in ckpt_dir.glob("*.ckpt"))
    assert local == ["lora-1_4.ckpt", "lora-2_4.ckpt", "lora-3_4.ckpt"]
    assert uploader.errors == []
    stored = {o.name: o.size for o in store.list_run("run-cb")}
    assert stored == {f"checkpoints/{n}": (ckpt_dir / n).stat().st_size for n in local}
    assert {r.key.rsplit("/", 1)[1]: r.md5 for r in uploader.results} == {n: _md5(ckpt_dir / n) for n in local}
    assert probe.uploaded_at_epoch_end == [0, 0, 0] and release.is_set()
    assert len(uploader.hook_seconds) == 3


def test_callback_built_from_a_yaml_entry(obs_server, tmp_path, monkeypatch):
    """MindFormers' own callback builder makes the uploader from a YAML-style mapping and OBS_* variables."""
    from mindformers.core.callback.build_callback import build_callback

    for name, value in obs_server.env().items():
        if name.startswith("OBS_"):
            monkeypatch.setenv(name, value)
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    (ckpt_dir / "lora-1_4.ckpt").write_bytes(b"x" * 1000)
    uploader = build_callback({"type": "ObsCheckpointUploader", "store": "obs://runs-bucket/exp",
                               "ckpt_dir": str(ckpt_dir), "run_id": "run-yaml"})
    assert isinstance(uploader, ObsCheckpointUploader)
    uploader.on_train_end(None)
    assert [o.name for o in uploader.store.list_run("run-yaml")] == ["checkpoints/lora-1_4.ckpt"]


def test_checkpoint_rotated_away_before_its_upload_is_skipped(obs_server, tmp_path):
    """keep_checkpoint_max may delete a queued checkpoint before the upload thread reaches it."""
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    old, new = ckpt_dir / "lora-1_4.ckpt", ckpt_dir / "lora-2_4.ckpt"
    old.write_bytes(b"x" * 1000)
    store = ObsStore(obs_server.settings(), "obs://runs-bucket/exp", tmp_path / "rec")
    release = threading.Event()
    upload = store.upload_file
    store.upload_file = lambda path, key: (release.wait(timeout=120), upload(path, key))[1]
    uploader = ObsCheckpointUploader(store, ckpt_dir, run_id="run-rot")
    assert uploader.queue_new_checkpoints() == 1
    old.unlink()  # the rotation
    new.write_bytes(b"y" * 1000)
    release.set()
    uploader.on_train_end(None)  # strict: would raise on a recorded error
    assert uploader.errors == []
    assert [o.name for o in store.list_run("run-rot")] == ["checkpoints/lora-2_4.ckpt"]
