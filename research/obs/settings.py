"""OBS connection settings: endpoint, credentials and transfer options, from the environment or a file.

Credentials never appear in ``repr``/``str`` of the settings, in log records or in error messages.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from urllib.parse import urlparse

ENV_KEYS = {  # environment variable -> settings field
    "OBS_ACCESS_KEY_ID": "access_key_id",
    "OBS_SECRET_ACCESS_KEY": "secret_access_key",
    "OBS_SECURITY_TOKEN": "security_token",
    "OBS_ENDPOINT": "endpoint",
    "OBS_SIGNATURE": "signature",
    "OBS_REGION": "region",
    "OBS_PATH_STYLE": "path_style",
    "OBS_PART_SIZE_MB": "part_size_mb",
    "OBS_TASK_NUM": "task_num",
    "OBS_MAX_RETRY_COUNT": "max_retry_count",
}
CONFIG_ENV = "OBS_CONFIG"  # path of a config file, read when no --config is given


class ObsConfigError(ValueError):
    """Settings are missing or malformed; the message names the field and where it came from."""


@dataclasses.dataclass
class ObsSettings:
    """How to reach OBS and how to transfer.

    Attributes:
        endpoint: ``https://obs.<region>.myhuaweicloud.com`` (or ``http://127.0.0.1:PORT`` for a local server).
        access_key_id, secret_access_key, security_token: credentials (token only for temporary AK/SK).
        signature: ``obs`` (OBS native), ``v4`` or ``v2``; S3-compatible servers need ``v4``.
        region: signing region for ``v4``.
        path_style: ``bucket`` in the path instead of the host name (local servers need it).
        part_size_mb: multipart part size in MiB (S3/OBS: 5 MiB minimum except the last part).
        task_num: parts uploaded concurrently.
        max_retry_count: retries of one request by the SDK on connection errors or 5xx.
        timeout_s: socket timeout of one request, seconds.
    """

    endpoint: str = ""
    access_key_id: str = dataclasses.field(default="", repr=False)
    secret_access_key: str = dataclasses.field(default="", repr=False)
    security_token: str = dataclasses.field(default="", repr=False)
    signature: str = "obs"
    region: str = "region"
    path_style: bool = False
    part_size_mb: float = 16.0
    task_num: int = 4
    max_retry_count: int = 3
    timeout_s: int = 60

    def validate(self, source: str = "settings") -> "ObsSettings":
        """Raise ``ObsConfigError`` naming the first bad field (and ``source``); return self."""
        for field in ("endpoint", "access_key_id", "secret_access_key"):
            if not getattr(self, field):
                env = next(k for k, v in ENV_KEYS.items() if v == field)
                raise ObsConfigError(f"{source}: {field} is not set (environment variable {env} or config key "
                                     f"{field!r})")
        parsed = urlparse(self.endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ObsConfigError(f"{source}: endpoint {self.endpoint!r} is not an http(s):// URL")
        if self.signature not in ("obs", "v4", "v2"):
            raise ObsConfigError(f"{source}: signature {self.signature!r} is not one of obs, v4, v2")
        if not 0 < self.part_size_mb <= 5 * 1024:
            raise ObsConfigError(f"{source}: part_size_mb {self.part_size_mb} is outside (0, 5120]")
        if self.task_num < 1:
            raise ObsConfigError(f"{source}: task_num {self.task_num} must be >= 1")
        return self

    @property
    def part_size(self) -> int:
        """Part size in bytes."""
        return int(self.part_size_mb * 1024 * 1024)


def _coerce(field: dataclasses.Field, value, source: str):
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        # The value itself is not echoed: the field could be a mistyped credential.
        raise ObsConfigError(f"{source}: field {field.name!r} must be a {kind}") from None


def load_settings(config_file: str | os.PathLike | None = None, env: dict | None = None) -> ObsSettings:
    """Settings from a config file, then environment variables on top (the environment wins).

    Args:
        config_file: YAML or JSON mapping with the field names of ``ObsSettings``; when None, the file
            named by ``$OBS_CONFIG`` if set, else none.
        env: environment to read (default ``os.environ``); see ``ENV_KEYS``.

    Returns:
        Validated settings.

    Raises:
        ObsConfigError: unreadable file, unknown key, bad value or missing endpoint/credentials;
            the message names the file or variable and the field, never a credential.
    """
    env = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(ObsSettings)}
    values = {}
    config_file = config_file or env.get(CONFIG_ENV) or None
    if config_file:
        path = Path(config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ObsConfigError(f"cannot read OBS config file {path}: {e.strerror}") from None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import yaml
                data = yaml.safe_load(text)
        except ValueError as e:  # json.JSONDecodeError and yaml.YAMLError's line info
            raise ObsConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {e}") from None
        except Exception as e:  # yaml.YAMLError is not a ValueError
            raise ObsConfigError(f"{path}: not valid YAML: {getattr(e, 'problem_mark', '')}") from None
        if not isinstance(data, dict):
            raise ObsConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        for key, value in data.items():
            if key not in fields:
                raise ObsConfigError(f"{path}: unknown key {key!r} (known: {', '.join(fields)})")
            values[key] = _coerce(fields[key], value, str(path))
    for var, field in ENV_KEYS.items():
        if env.get(var):
            values[field] = _coerce(fields[field], env[var], f"${var}")
    source = f"OBS settings (config {config_file}, environment)" if config_file else "OBS settings (environment)"
    return ObsSettings(**values).validate(source)
