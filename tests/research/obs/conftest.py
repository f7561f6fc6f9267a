"""research.obs tests: a real S3-compatible server (moto) on 127.0.0.1."""
from pathlib import Path

import pytest

from tests.fixtures.network import free_port_number


class ObsLocalServer:
    """``python -m research.obs.local_server`` in a subprocess; ``stop()``/``start()`` keep the port.

    Its request log (``METHOD /bucket/key?query STATUS`` per line) lets tests count parts server-side.
    State is in memory: a restart forgets buckets, objects and open multipart uploads.
    """

    REGION = "us-east-1"

    def __init__(self, workdir: Path):
        self.port = free_port_number()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.request_log = workdir / "requests.log"
        self.proc = None

    def start(self):
        import socket
        import subprocess
        import sys
        import time

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "research.obs.local_server", "--port", str(self.port),
             "--request_log", str(self.request_log)],
            cwd=Path(__file__).resolve().parents[3], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"local S3 server did not start on port {self.port}")

    def stop(self):
        """SIGKILL: the server dies mid-request, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def settings(self, **overrides):
        from research.obs import ObsSettings

        values = dict(endpoint=self.endpoint, access_key_id="obs-test-ak", secret_access_key="obs-test-sk",
                      signature="v4", region=self.REGION, path_style=True, part_size_mb=5, task_num=2,
                      max_retry_count=1, timeout_s=20)
        values.update(overrides)
        return ObsSettings(**values)

    def env(self, **overrides) -> dict:
        """Environment for ``python -m research.obs`` against this server."""
        import os

        s = self.settings()
        env = dict(os.environ, OBS_ENDPOINT=s.endpoint, OBS_ACCESS_KEY_ID=s.access_key_id,
                   OBS_SECRET_ACCESS_KEY=s.secret_access_key, OBS_SIGNATURE="v4", OBS_REGION=self.REGION,
                   OBS_PATH_STYLE="true", OBS_PART_SIZE_MB="5", OBS_TASK_NUM="1", OBS_MAX_RETRY_COUNT="1")
        env.pop("OBS_CONFIG", None)
        env.update(overrides)
        return env

    def create_bucket(self, name: str) -> None:
        from obs import ObsClient

        client = ObsClient(access_key_id="x", secret_access_key="y", server=self.endpoint, signature="v4",
                           region=self.REGION, path_style=True, is_signature_negotiation=False)
        resp = client.createBucket(name)
        client.close()
        assert resp.status == 200, (resp.status, resp.errorCode)

    def requests(self) -> list[str]:
        return self.request_log.read_text().splitlines() if self.request_log.exists() else []


@pytest.fixture
def obs_server(tmp_path):
    """A fresh local S3-compatible server with bucket ``runs-bucket``; killed after the test."""
    server = ObsLocalServer(tmp_path).start()
    server.create_bucket("runs-bucket")
    yield server
    server.stop()
