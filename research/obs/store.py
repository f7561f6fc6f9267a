"""Upload, download and list a run directory under ``obs://bucket/prefix/<run-id>/`` with the OBS SDK.

Uploads go through the SDK's resumable multipart ``uploadFile`` (``enableCheckpoint``: a JSON resume
record lists the parts already acknowledged, so a rerun after a crash sends only the missing ones).
Before resuming, the record is checked against the server (ListParts): a record whose upload id the
server no longer knows, or whose parts it does not hold, is stale; the upload is then aborted and
restarted from scratch. After every upload the object's size and ETag are compared with digests of
the local file (see ``integrity.file_digests``), and the file must be unchanged (size, modification
time, inode) since before it was hashed, else the object is deleted; downloads are checked against the MD5 stored in the
object's metadata at upload. A mismatch raises and the bad object or file is deleted.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import re
from pathlib import Path

from .integrity import effective_part_size, file_digests
from .safe_path import target_inside
from .settings import ObsSettings

log = logging.getLogger(__name__)

MD5_META = "md5"  # user metadata key holding the whole-file MD5 hex (x-obs-meta-md5 / x-amz-meta-md5)
DEFAULT_RECORD_DIR = Path.home() / ".cache" / "mathlora" / "obs_records"


class ObsError(RuntimeError):
    """An OBS request failed or a transfer did not verify; the message names bucket, key and cause."""


@dataclasses.dataclass(frozen=True)
class ObsUrl:
    """``obs://bucket/prefix``: where runs are stored (``prefix`` has no leading/trailing slash)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> "ObsUrl":
        """Parse ``obs://bucket[/prefix]`` (``s3://`` accepted too). Raises ``ValueError`` otherwise."""
        m = re.fullmatch(r"(?:obs|s3)://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", url)
        if not m:
            raise ValueError(f"not an OBS URL (obs://bucket/prefix, bucket 3-63 lowercase letters, digits, "
                             f"'.', '-'): {url!r}")
        return cls(m.group(1), (m.group(2) or "").strip("/"))

    def key(self, *parts: str) -> str:
        """Object key of ``parts`` joined under the prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def __str__(self) -> str:
        return f"obs://{self.bucket}/{self.prefix}".rstrip("/")


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One stored object: key relative to the run, size in bytes, ETag (quotes stripped)."""

    name: str
    size: int
    etag: str


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """Outcome of one verified upload: key, size (bytes), local MD5 hex, server ETag, resumed parts reused."""

    key: str
    size: int
    md5: str
    etag: str
    resumed: bool
    restarted_stale: bool


def _file_state(path: Path) -> tuple[int, int, int, int]:
    """``(size, mtime_ns, inode, device)``: changes when a file is appended to, rewritten or replaced."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def _etag(value) -> str:
    return str(value or "").strip('"')


class ObsStore:
    """Run-level transfers on one bucket.

    Args:
        settings: endpoint, credentials and transfer options (``load_settings``).
        url: destination ``obs://bucket/prefix``; runs go to ``prefix/<run-id>/``.
        record_dir: where the SDK's resume records live (one JSON per local file and object).
    """

    def __init__(self, settings: ObsSettings, url: ObsUrl | str, record_dir: str | os.PathLike | None = None):
        from obs import ObsClient

        self.settings = settings
        self.url = ObsUrl.parse(url) if isinstance(url, str) else url
        self.record_dir = Path(record_dir or DEFAULT_RECORD_DIR)
        self.client = ObsClient(
            access_key_id=settings.access_key_id, secret_access_key=settings.secret_access_key,
            security_token=settings.security_token or None, server=settings.endpoint,
            signature=settings.signature, region=settings.region, path_style=settings.path_style,
            # Negotiation probes the server for OBS vs S3 signing; S3-compatible servers answer it wrongly.
            is_signature_negotiation=settings.signature == "obs",
            max_retry_count=settings.max_retry_count, timeout=settings.timeout_s)

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    def _call(self, what: str, fn, *args, ok=(200, 204, 206), **kwargs):
        """Run one SDK request; turn a connection failure or an error status into ``ObsError``."""
        try:
            resp = fn(*args, **kwargs)
        except Exception as e:  # the SDK raises bare Exceptions for socket errors after its retries
            raise ObsError(f"{what}: cannot reach OBS endpoint {self.settings.endpoint} "
                           f"({type(e).__name__}: {e})") from None
        if resp.status not in ok:
            raise ObsError(f"{what}: HTTP {resp.status} {resp.errorCode or ''} {resp.errorMessage or ''}".rstrip())
        return resp

    def check_bucket(self) -> None:
        """Raise ``ObsError`` unless the endpoint answers and the bucket exists and is accessible."""
        try:
            resp = self.client.headBucket(self.url.bucket)
        except Exception as e:
            raise ObsError(f"cannot reach OBS endpoint {self.settings.endpoint} "
                           f"({type(e).__name__}: {e})") from None
        if resp.status == 404:
            raise ObsError(f"bucket {self.url.bucket!r} does not exist at {self.settings.endpoint}")
        if resp.status == 403:
            raise ObsError(f"access to bucket {self.url.bucket!r} at {self.settings.endpoint} denied (HTTP 403): "
                           f"check the access key, its permissions and the endpoint's region")
        if resp.status >= 300:
            raise ObsError(f"bucket {self.url.bucket!r} at {self.settings.endpoint}: HTTP {resp.status} "
                           f"{resp.errorCode or ''}")

    # -- upload -----------------------------------------------------------------------------------

    def record_path(self, local: str | os.PathLike, key: str) -> Path:
        """Resume record of uploading ``local`` to ``key`` in this bucket."""
        ident = f"{self.settings.endpoint}|{self.url.bucket}|{key}|{os.path.abspath(local)}"
        return self.record_dir / f"{hashlib.sha1(ident.encode()).hexdigest()[:20]}.upload_record"

    def _check_record(self, record_path: Path, key: str) -> tuple[bool, bool]:
        """``(resumable, stale)`` for an existing resume record; a stale one is aborted and deleted.

        Stale: the server does not know the record's upload id (it expired, was aborted, or the server
        lost it), or a part the record calls complete is missing on the server or has another ETag.
        """
        if not record_path.exists():
            return False, False
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            upload_id = record["uploadId"]
            done = {int(p["partNum"]): _etag(p["etag"]) for p in record["partEtags"]}
        except (ValueError, KeyError, TypeError):
            log.warning("resume record %s is unreadable (interrupted write?); starting the upload afresh",
                        record_path)
            record_path.unlink()
            return False, True
        if record.get("bucketName") != self.url.bucket or record.get("objectKey") != key:
            record_path.unlink()
            return False, True
        on_server, marker = {}, None
        while True:  # ListParts pages at 1000 parts
            try:
                resp = self.client.listParts(self.url.bucket, key, upload_id, partNumberMarker=marker)
            except Exception as e:
                raise ObsError(f"checking resume record for obs://{self.url.bucket}/{key}: cannot reach OBS "
                               f"endpoint {self.settings.endpoint} ({type(e).__name__}: {e})") from None
            if resp.status == 404:
                log.warning("stale resume record for obs://%s/%s: the server no longer knows upload %s "
                            "(expired, aborted or server state lost); restarting the upload", self.url.bucket, key,
                            upload_id)
                record_path.unlink()
                return False, True
            if resp.status >= 300:
                raise ObsError(f"ListParts obs://{self.url.bucket}/{key}: HTTP {resp.status} {resp.errorCode or ''}")
            on_server.update({int(p.partNumber): _etag(p.etag) for p in resp.body.parts or []})
            if not resp.body.isTruncated:
                break
            marker = resp.body.nextPartNumberMarker
        missing = [n for n, etag in done.items() if on_server.get(n) != etag]
        if missing:
            log.warning("stale resume record for obs://%s/%s: parts %s are not on the server as recorded; "
                        "restarting the upload", self.url.bucket, key, missing[:10])
            self.client.abortMultipartUpload(self.url.bucket, key, upload_id)
            record_path.unlink()
            return False, True
        return True, False

    def upload_file(self, local: str | os.PathLike, key: str) -> UploadResult:
        """Upload one file to ``key`` (a full object key) resumably, then verify size and ETag.

        Args:
            local: file to send.
            key: object key in the bucket.

        Returns:
            ``UploadResult``; ``resumed`` is True when a valid resume record let parts be skipped,
            ``restarted_stale`` when a stale record was discarded first.

        Raises:
            FileNotFoundError: ``local`` is missing.
            ObsError: bucket/endpoint problems, a failed part (the resume record is kept, so a rerun
                continues), a verification mismatch, or a file that changed (grew, was rewritten or
                replaced) while it was hashed and sent (the object is deleted in both cases).
        """
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"no such file to upload: {local}")
        self.record_dir.mkdir(parents=True, exist_ok=True)
        record_path = self.record_path(local, key)
        self.check_bucket()
        resumed, stale = self._check_record(record_path, key)
        before = _file_state(local)  # taken before hashing: any later change shows up after the upload
        part_size = effective_part_size(before[0], self.settings.part_size)
        size, md5, expected_etag = file_digests(local, part_size)
        where = f"obs://{self.url.bucket}/{key}"
        log.info("uploading %s -> %s (%d bytes, part size %d, %d concurrent%s)", local, where, size, part_size,
                 self.settings.task_num, ", resuming" if resumed else "")
        try:
            resp = self.client.uploadFile(self.url.bucket, key, str(local), partSize=part_size,
                                          taskNum=self.settings.task_num, enableCheckpoint=True,
                                          checkpointFile=str(record_path), metadata={MD5_META: md5})
        except Exception as e:
            # Failed parts leave the record in place (rerun resumes); 4xx answers made the SDK abort.
            raise ObsError(f"upload {local} -> {where} failed: {e}"
                           + ("; rerun to resume" if record_path.exists() else "")) from None
        if resp is None or resp.status >= 300:
            status = getattr(resp, "status", None)
            raise ObsError(f"upload {local} -> {where} failed: HTTP {status} {getattr(resp, 'errorCode', '')}")
        self.verify_object(key, size, md5, expected_etag)
        self._check_unchanged(local, key, before)
        return UploadResult(key, size, md5, expected_etag, resumed, stale)

    def _check_unchanged(self, local: Path, key: str, before: tuple) -> None:
        """Delete the object and raise ``ObsError`` if ``local`` changed since ``before`` was taken.

        The object then holds a snapshot that matches the digests taken at the start (so size and
        ETag verify) but not the file as it is now: a file that grows during the upload (a checkpoint
        still being written) keeps its old length in the object.
        """
        after = _file_state(local) if local.exists() else None
        if after == before:
            return
        self.client.deleteObject(self.url.bucket, key)
        now = "deleted" if after is None else f"{after[0]} bytes"
        raise ObsError(f"{local} changed while it was being uploaded to obs://{self.url.bucket}/{key} "
                       f"({before[0]} bytes at the start, {now} at the end; modification time, inode or size "
                       f"differ): object deleted; upload it again once the file is complete")

    def verify_object(self, key: str, size: int, md5: str, multipart_etag: str) -> None:
        """Compare the stored object with local digests; delete it and raise ``ObsError`` on mismatch.

        The ETag may be the plain MD5 (single PUT) or the multipart form ``<hex>-<n>``.
        """
        meta = self._call(f"HEAD obs://{self.url.bucket}/{key}", self.client.getObjectMetadata, self.url.bucket,
                          key).body
        etag = _etag(meta.etag)
        problems = []
        if int(meta.contentLength) != size:
            problems.append(f"size {meta.contentLength} != local {size}")
        if etag not in (md5, multipart_etag):
            problems.append(f"ETag {etag} != local {multipart_etag} (multipart) / {md5} (MD5)")
        if problems:
            self.client.deleteObject(self.url.bucket, key)
            raise ObsError(f"obs://{self.url.bucket}/{key} does not match the local file: {'; '.join(problems)}; "
                           f"object deleted")

    def upload_run(self, run_dir: str | os.PathLike, run_id: str | None = None,
                   include: list[str] | None = None) -> list[UploadResult]:
        """Upload every file of ``run_dir`` (recursively) to ``prefix/<run-id>/<relative path>``.

        Args:
            run_dir: a run directory (``logs/<run-id>``: ``lora.ckpt``, ``loss.jsonl``, ``report.md`` ...).
            run_id: defaults to ``run_dir``'s name.
            include: glob patterns on the relative path (``fnmatch``; e.g. ``["*.ckpt", "*.md"]``);
                all files when None.

        Raises:
            NotADirectoryError: ``run_dir`` is not a directory.
            ObsError: as ``upload_file``; files uploaded before the failure stay uploaded.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise NotADirectoryError(f"run directory not found: {run_dir}")
        run_id = run_id or run_dir.resolve().name
        results = []
        for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(run_dir).as_posix()
            if include and not any(fnmatch.fnmatch(rel, pat) for pat in include):
                continue
            results.append(self.upload_file(path, self.url.key(run_id, rel)))
        return results

    # -- list / download --------------------------------------------------------------------------

    def list_run(self, run_id: str) -> list[ObjectInfo]:
        """Objects under ``prefix/<run-id>/``, names relative to it, sorted; empty if none."""
        base = self.url.key(run_id) + "/"
        found, marker = [], None
        while True:
            body = self._call(f"list {self.url}/{run_id}/", self.client.listObjects, self.url.bucket,
                              prefix=base, marker=marker, max_keys=1000).body
            for c in body.contents or []:
                found.append(ObjectInfo(c.key[len(base):], int(c.size), _etag(c.etag)))
            if not body.is_truncated:
                break
            marker = body.next_marker or body.contents[-1].key
        return sorted(found, key=lambda o: o.name)

    def list_runs(self) -> list[str]:
        """Run ids directly under the prefix."""
        base = self.url.key() + "/" if self.url.prefix else ""
        body = self._call(f"list {self.url}/", self.client.listObjects, self.url.bucket, prefix=base,
                          delimiter="/", max_keys=1000).body
        return sorted(p.prefix[len(base):].rstrip("/") for p in body.commonPrefixs or [])

    def download_run(self, run_id: str, dest: str | os.PathLike) -> list[Path]:
        """Download ``prefix/<run-id>/`` into ``dest`` and verify each file (size, MD5).

        The MD5 is the one stored in the object's metadata at upload, else a plain-MD5 ETag; an object
        with neither (multipart upload by another tool) is checked by size only, with a warning.

        Every object name is checked before anything is written (``safe_path``): one whose key would
        leave ``dest`` (``..`` segments, a doubled slash before an absolute path, backslashes...) fails
        the whole download, naming each such key. A partial run that looks complete is worse than
        none, and such keys mean that someone else wrote into the run's prefix. Folder markers (empty
        objects whose key ends in ``/``, as the OBS console creates them) are skipped.

        Raises:
            ObsError: no such run, an unsafe key (nothing is written), a failed download, or a
                mismatch (the bad file is deleted).
        """
        objects = [o for o in self.list_run(run_id) if not (o.size == 0 and (o.name == "" or o.name.endswith("/")))]
        if not objects:
            raise ObsError(f"no objects under {self.url}/{run_id}/")
        dest = Path(dest)
        targets, refused = [], []
        for obj in objects:
            try:
                targets.append(target_inside(dest, obj.name))
            except ValueError as e:
                refused.append(f"obs://{self.url.bucket}/{self.url.key(run_id)}/{obj.name}: {e}")
        if refused:
            raise ObsError(f"refusing to download {self.url}/{run_id}/ into {dest}: {len(refused)} object key(s) "
                           f"would be written outside it; nothing was downloaded:\n  " + "\n  ".join(refused))
        out = []
        for obj, target in zip(objects, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            key = self.url.key(run_id, obj.name)
            self._call(f"download obs://{self.url.bucket}/{key}", self.client.downloadFile, self.url.bucket, key,
                       downloadFile=str(target), partSize=self.settings.part_size, taskNum=self.settings.task_num)
            head = self._call(f"HEAD obs://{self.url.bucket}/{key}", self.client.getObjectMetadata,
                              self.url.bucket, key)
            # The SDK returns user metadata among the response headers, its x-obs-meta-/x-amz-meta- prefix cut.
            expected = dict(head.header or []).get(MD5_META)
            if expected is None and re.fullmatch(r"[0-9a-f]{32}", obj.etag):
                expected = obj.etag
            size, md5, _ = file_digests(target, max(obj.size, 1))
            if size != obj.size or (expected is not None and md5 != expected):
                target.unlink()
                raise ObsError(f"downloaded {target} does not match obs://{self.url.bucket}/{key}: size {size} vs "
                               f"{obj.size}, MD5 {md5} vs {expected}; file deleted")
            if expected is None:
                log.warning("obs://%s/%s carries no MD5; checked its size only", self.url.bucket, key)
            out.append(target)
        return out
