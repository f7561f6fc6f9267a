"""research.obs against a real S3-compatible server on 127.0.0.1: upload, verify, download, list, errors."""
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.obs import ObsConfigError, ObsError, ObsStore, ObsUrl, load_settings
from research.obs.integrity import file_digests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


def _random_file(path: Path, size: int, seed: int = 0) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, size, 16 * MiB):
            f.write(rng.integers(0, 256, min(16 * MiB, size - start), dtype=np.uint8).tobytes())
    return path


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 * MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def _part_puts(lines, key):
    return [int(m.group(1)) for line in lines if line.startswith(f"PUT /runs-bucket/{key}?")
            for m in [re.search(r"partNumber=(\d+)", line)] if m and line.endswith(" 200")]


def test_200mb_multipart_upload_verified_by_md5(obs_server, tmp_path):
    big = _random_file(tmp_path / "big.ckpt", 200 * MiB)
    store = ObsStore(obs_server.settings(part_size_mb=16, task_num=4), "obs://runs-bucket/exp", tmp_path / "rec")
    t0 = time.time()
    result = store.upload_file(big, "exp/run1/big.ckpt")
    elapsed = time.time() - t0
    print(f"200 MiB upload + verification: {elapsed:.1f} s ({200 / elapsed:.0f} MiB/s)")
    assert result.size == 200 * MiB and result.md5 == _md5(big)
    # 13 parts of 16 MiB (the last 8 MiB) went to the server; its ETag is the MD5 of the part MD5s.
    assert sorted(_part_puts(obs_server.requests(), "exp/run1/big.ckpt")) == list(range(1, 14))
    head = store.client.getObjectMetadata("runs-bucket", "exp/run1/big.ckpt")
    part_md5s = b"".join(hashlib.md5(chunk).digest() for chunk in _chunks(big, 16 * MiB))
    assert head.body.etag.strip('"') == f"{hashlib.md5(part_md5s).hexdigest()}-13" == result.etag
    assert dict(head.header)["md5"] == result.md5
    assert not any((tmp_path / "rec").iterdir()), "the resume record is deleted after a completed upload"


def _chunks(path, size):
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(size), b"")


@pytest.mark.parametrize("size,part", [(0, 5), (1, 5), (5 * MiB, 5), (5 * MiB + 1, 5), (3 * MiB, 1)])
def test_file_digests_match_hashlib(tmp_path, size, part):
    path = _random_file(tmp_path / "f", size, seed=size)
    n, md5, etag = file_digests(path, part * MiB)
    parts = list(_chunks(path, part * MiB)) or [b""]
    assert (n, md5) == (size, _md5(path))
    assert etag == f"{hashlib.md5(b''.join(hashlib.md5(p).digest() for p in parts)).hexdigest()}-{len(parts)}"


def test_run_dir_roundtrip_and_listing(obs_server, tmp_path):
    run = tmp_path / "logs" / "run-42"
    (run / "eval" / "after").mkdir(parents=True)
    _random_file(run / "lora.ckpt", 11 * MiB, seed=1)
    (run / "loss.jsonl").write_text('{"step": 1, "loss": 2.5}\n')
    (run / "report.md").write_text("# report\n")
    (run / "eval" / "after" / "metrics.json").write_text('{"accuracy": 0.5}')
    store = ObsStore(obs_server.settings(), "obs://runs-bucket/team/exp", tmp_path / "rec")

    results = store.upload_run(run)
    assert {r.key for r in results} == {f"team/exp/run-42/{n}" for n in
                                        ("lora.ckpt", "loss.jsonl", "report.md", "eval/after/metrics.json")}
    assert store.list_runs() == ["run-42"]
    listing = {o.name: o.size for o in store.list_run("run-42")}
    assert listing == {"eval/after/metrics.json": 17, "lora.ckpt": 11 * MiB, "loss.jsonl": 25, "report.md": 9}

    only = store.upload_run(run, run_id="run-43", include=["*.ckpt", "*.md"])
    assert sorted(r.key.rsplit("/", 1)[1] for r in only) == ["lora.ckpt", "report.md"]

    out = tmp_path / "back"
    files = store.download_run("run-42", out)
    assert len(files) == 4
    for rel in listing:
        assert (out / rel).read_bytes() == (run / rel).read_bytes(), rel


def test_verification_mismatch_deletes_object(obs_server, tmp_path):
    path = _random_file(tmp_path / "a.ckpt", 2 * MiB)
    store = ObsStore(obs_server.settings(), "obs://runs-bucket", tmp_path / "rec")
    result = store.upload_file(path, "r/a.ckpt")
    with pytest.raises(ObsError, match="does not match the local file: ETag"):
        store.verify_object("r/a.ckpt", result.size, "0" * 32, "0" * 32 + "-1")
    assert store.client.getObjectMetadata("runs-bucket", "r/a.ckpt").status == 404


def test_download_detects_corrupt_object(obs_server, tmp_path):
    """An object whose bytes differ from the MD5 recorded at upload is rejected and not kept."""
    store = ObsStore(obs_server.settings(), "obs://runs-bucket", tmp_path / "rec")
    (tmp_path / "x.bin").write_bytes(b"original")
    store.client.putFile("runs-bucket", "r9/x.bin", str(tmp_path / "x.bin"), metadata={"md5": "0" * 32})
    with pytest.raises(ObsError, match="does not match"):
        store.download_run("r9", tmp_path / "out")
    assert not (tmp_path / "out" / "x.bin").exists()


def test_wrong_bucket_and_wrong_endpoint_give_clear_errors(obs_server, tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    with pytest.raises(ObsError, match=r"bucket 'no-such-bucket' does not exist at http://127\.0\.0\.1"):
        ObsStore(obs_server.settings(), "obs://no-such-bucket/p", tmp_path / "rec").upload_file(path, "p/f.txt")
    closed = ObsStore(obs_server.settings(endpoint="http://127.0.0.1:9"), "obs://runs-bucket", tmp_path / "rec")
    with pytest.raises(ObsError, match=r"cannot reach OBS endpoint http://127\.0\.0\.1:9 \(ConnectionRefused"):
        closed.upload_file(path, "p/f.txt")
    with pytest.raises(ValueError, match="not an OBS URL"):
        ObsUrl.parse("obs://A_bad")


def test_settings_from_file_and_environment(tmp_path):
    cfg = tmp_path / "obs.yaml"
    cfg.write_text("endpoint: https://obs.cn-north-4.myhuaweicloud.com\naccess_key_id: FILEAK\n"
                   "secret_access_key: FILESK\npart_size_mb: 32\ntask_num: 8\n")
    s = load_settings(cfg, env={})
    assert (s.endpoint, s.access_key_id, s.part_size, s.task_num, s.signature) == (
        "https://obs.cn-north-4.myhuaweicloud.com", "FILEAK", 32 * MiB, 8, "obs")
    s = load_settings(cfg, env={"OBS_ACCESS_KEY_ID": "ENVAK", "OBS_PATH_STYLE": "true", "OBS_TASK_NUM": "2"})
    assert (s.access_key_id, s.secret_access_key, s.path_style, s.task_num) == ("ENVAK", "FILESK", True, 2)
    assert "FILESK" not in repr(s) and "ENVAK" not in repr(s)
    with pytest.raises(ObsConfigError, match="secret_access_key is not set \\(environment variable "
                                             "OBS_SECRET_ACCESS_KEY"):
        load_settings(None, env={"OBS_ENDPOINT": "http://x", "OBS_ACCESS_KEY_ID": "a"})
    cfg.write_text("endpoint: http://x\nacces_key_id: typo\n")
    with pytest.raises(ObsConfigError, match="unknown key 'acces_key_id'"):
        load_settings(cfg, env={})
    cfg.write_text("endpoint: http://x\naccess_key_id: a\nsecret_access_key: b\ntask_num: many\n")
    with pytest.raises(ObsConfigError, match="field 'task_num' must be a int") as err:
        load_settings(cfg, env={})
    assert "many" not in str(err.value)


def test_cli_never_prints_or_logs_credentials(obs_server, tmp_path):
    ak, sk = "AKIDLEAKCHECK7Q2ZX", "SKLEAKCHECK/9f8e7d6c5b4a+secret"
    env = obs_server.env(OBS_ACCESS_KEY_ID=ak, OBS_SECRET_ACCESS_KEY=sk)
    run = tmp_path / "run-7"
    run.mkdir()
    _random_file(run / "lora.ckpt", 6 * MiB)
    (run / "report.md").write_text("ok\n")
    rec = ["--record_dir", str(tmp_path / "rec")]
    script = subprocess.run(["bash", "scripts/upload_obs.sh", "--dest", "obs://runs-bucket/p", *rec, str(run),
                             "--include", "*.ckpt", "*.md"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert script.returncode == 0, script.stdout + script.stderr
    commands = [
        (["--dest", "obs://runs-bucket/p", *rec, "upload", str(run)], 0),
        (["--dest", "obs://runs-bucket/p", "list"], 0),
        (["--dest", "obs://runs-bucket/p", "list", "run-7"], 0),
        (["--dest", "obs://runs-bucket/p", "download", "run-7", str(tmp_path / "back")], 0),
        (["--dest", "obs://missing-bucket/p", *rec, "upload", str(run)], 1),
        (["--dest", "obs://runs-bucket/p", "--part_size_mb", "0", "list"], 2),
    ]
    transcript = [script.stdout + script.stderr]
    for args, rc in commands:
        proc = subprocess.run([sys.executable, "-m", "research.obs", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        transcript.append(proc.stdout + proc.stderr)
        assert proc.returncode == rc, (args, proc.stdout, proc.stderr)
    text = "\n".join(transcript)
    assert script.stdout.count("verified") == 2  # lora.ckpt and report.md
    assert "uploaded obs://runs-bucket/p/run-7/lora.ckpt 6291456 bytes md5" in text
    assert "does not exist" in text and "part_size_mb 0.0 is outside" in text
    server_log = obs_server.request_log.read_text()
    for secret in (ak, sk):
        assert secret not in text and secret not in server_log
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size < MiB]
    assert files and not any(ak in p.read_text(errors="ignore") or sk in p.read_text(errors="ignore")
                             for p in files)


def test_missing_run_dir_is_reported_before_settings(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no OBS settings at all
    missing = tmp_path / "missing" / "dir"
    script = subprocess.run(["bash", "scripts/upload_obs.sh", "--dest", "obs://b/p", str(missing)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert (script.returncode, script.stderr) == (2, f"upload_obs.sh: run directory not found: {missing}\n")
    cli = subprocess.run([sys.executable, "-m", "research.obs", "--dest", "obs://b/p", "upload", str(missing)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (cli.returncode, cli.stderr) == (2, f"error: run directory not found: {missing}\n")
