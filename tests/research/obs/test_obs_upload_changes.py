"""A file that changes while research.obs uploads it is never reported verified (real moto server).

The change is made from inside the SDK's part upload (a hook around the client's part request), so it
lands between the first and the second part deterministically, without sleeps.
"""
import os

import pytest

from research.obs import ObsError, ObsStore

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def _write(path, size, byte=b"a"):
    path.write_bytes(byte * size)
    return path


def _hook_first_part(store, action):
    """Run ``action()`` once, just before the first part of a multipart upload is sent."""
    send = store.client._uploadPartWithNotifier
    calls = []

    def hooked(*args, **kwargs):
        if not calls:
            action()
        calls.append(kwargs.get("partNumber", args[2] if len(args) > 2 else None))
        return send(*args, **kwargs)

    store.client._uploadPartWithNotifier = hooked
    return calls


def _append(path, size):
    with open(path, "ab") as f:
        f.write(b"z" * size)


def _rewrite_same_size_same_bytes(path):
    """Replace the file by a copy with identical bytes: the content uploaded is right, but it is another file."""
    tmp = path.with_suffix(".new")
    tmp.write_bytes(path.read_bytes())
    os.replace(tmp, path)


@pytest.mark.parametrize("change,expect", [
    (lambda p: _append(p, 3 * MiB), "41943040 bytes at the start, 45088768 bytes at the end"),
    (_rewrite_same_size_same_bytes, "41943040 bytes at the start, 41943040 bytes at the end"),
])
def test_file_changed_during_upload_is_not_verified(obs_server, tmp_path, change, expect):
    path = _write(tmp_path / "grow.ckpt", 40 * MiB)
    store = ObsStore(obs_server.settings(part_size_mb=5, task_num=1), "obs://runs-bucket", tmp_path / "rec")
    calls = _hook_first_part(store, lambda: change(path))
    with pytest.raises(ObsError, match=f"changed while it was being uploaded.*{expect}.*object deleted"):
        store.upload_file(path, "r/grow.ckpt")
    assert len(calls) == 8, "all eight 5 MiB parts of the original 40 MiB were sent"
    assert store.client.getObjectMetadata("runs-bucket", "r/grow.ckpt").status == 404


def test_unchanged_file_still_verifies(obs_server, tmp_path):
    path = _write(tmp_path / "ok.ckpt", 12 * MiB)
    store = ObsStore(obs_server.settings(part_size_mb=5, task_num=1), "obs://runs-bucket", tmp_path / "rec")
    calls = _hook_first_part(store, lambda: None)
    result = store.upload_file(path, "r/ok.ckpt")
    assert (result.size, len(calls)) == (12 * MiB, 3)
    assert store.client.getObjectMetadata("runs-bucket", "r/ok.ckpt").status == 200
