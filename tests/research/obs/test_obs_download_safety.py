"""research.obs downloads never write outside their destination: keys with '..', doubled slashes before
an absolute path, backslashes... are refused by name, against a real S3-compatible server (moto)."""
import subprocess
import sys
from pathlib import Path

import pytest

from research.obs import ObsError, ObsStore
from research.obs.safe_path import target_inside, unsafe_reason

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _boto3(obs_server):
    """A plain S3 client: it sends keys byte for byte, as any tool writing to the bucket could."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=obs_server.endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                        region_name=obs_server.REGION, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture()
def evil_run(obs_server, tmp_path):
    """Run ``p/run-1`` with two good files and keys escaping by '..', by an absolute path and by a backslash."""
    s3 = _boto3(obs_server)
    outside = tmp_path / "outside"
    keys = {
        "p/run-1/lora.ckpt": b"weights",
        "p/run-1/eval/metrics.json": b"{}",
        "p/run-1/../../escape_rel.txt": b"rel",
        f"p/run-1/{outside}/escape_abs.txt": b"abs",   # doubled slash: 'p/run-1//tmp/.../escape_abs.txt'
        "p/run-1/sub\\..\\..\\escape_bs.txt": b"bs",
    }
    for key, body in keys.items():
        s3.put_object(Bucket="runs-bucket", Key=key, Body=body)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="runs-bucket", Prefix="p/run-1/")["Contents"]}
    assert listed == set(keys), "the server must keep the keys as sent, or the test proves nothing"
    return outside


def _escaped(tmp_path, dest):
    return [p for p in tmp_path.rglob("escape_*")] + [p for p in dest.parent.parent.glob("escape_*")]


def test_download_refuses_escaping_keys_and_writes_nothing(obs_server, tmp_path, evil_run):
    dest = tmp_path / "a" / "b" / "dest"
    store = ObsStore(obs_server.settings(), "obs://runs-bucket/p", tmp_path / "rec")
    with pytest.raises(ObsError) as err:
        store.download_run("run-1", dest)
    msg = str(err.value)
    assert "3 object key(s) would be written outside it; nothing was downloaded" in msg
    assert "obs://runs-bucket/p/run-1/../../escape_rel.txt: object name '../../escape_rel.txt': '..' segment" in msg
    assert f"obs://runs-bucket/p/run-1/{evil_run}/escape_abs.txt" in msg and "absolute path" in msg
    assert "escape_bs.txt" in msg and "backslash" in msg
    assert "lora.ckpt" not in msg
    assert _escaped(tmp_path, dest) == []
    assert not dest.exists(), "nothing is written when any key is refused"


def test_cli_download_exit_1_names_keys(obs_server, tmp_path, evil_run):
    dest = tmp_path / "x" / "y" / "dest"
    proc = subprocess.run([sys.executable, "-m", "research.obs", "--dest", "obs://runs-bucket/p", "download", "run-1",
                           str(dest)], cwd=ROOT, env=obs_server.env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verified" not in proc.stdout
    assert "error: refusing to download obs://runs-bucket/p/run-1/" in proc.stderr
    assert "../../escape_rel.txt" in proc.stderr and "escape_abs.txt" in proc.stderr
    assert _escaped(tmp_path, dest) == [] and not dest.exists()


def test_folder_markers_skipped_and_good_run_downloads(obs_server, tmp_path):
    s3 = _boto3(obs_server)
    for key, body in {"p/run-2/": b"", "p/run-2/eval/": b"", "p/run-2/eval/m.json": b"{}", "p/run-2/a.txt": b"a"}.items():
        s3.put_object(Bucket="runs-bucket", Key=key, Body=body)
    store = ObsStore(obs_server.settings(), "obs://runs-bucket/p", tmp_path / "rec")
    files = store.download_run("run-2", tmp_path / "d")
    assert sorted(p.relative_to(tmp_path / "d").as_posix() for p in files) == ["a.txt", "eval/m.json"]
    assert (tmp_path / "d" / "eval" / "m.json").read_bytes() == b"{}"


@pytest.mark.parametrize("name,reason", [
    ("../x", "'..' segment"), ("a/../../x", "'..' segment"), ("a/..", "'..' segment"),
    ("/etc/x", "absolute path"), ("a//b", "empty path segment"), ("a/", "empty path segment"), ("", "empty name"),
    ("a\\b", "backslash"), ("C:x", "drive letter"), ("a/./b", "'.' segment"), ("a\x00b", "control character"),
    ("a\nb", "control character"),
])
def test_unsafe_names(name, reason, tmp_path):
    assert reason in unsafe_reason(name)
    with pytest.raises(ValueError, match="object name"):
        target_inside(tmp_path, name)


@pytest.mark.parametrize("name", ["a", "a/b/c.ckpt", "..a", "a..", "a/...", ".hidden", "rank_0/x y.json"])
def test_safe_names(name, tmp_path):
    assert unsafe_reason(name) is None
    assert target_inside(tmp_path, name) == tmp_path.joinpath(*name.split("/"))


def test_symlink_below_dest_cannot_lead_outside(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="outside"):
        target_inside(tmp_path / "dest", "link/file")
