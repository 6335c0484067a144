"""Finished videos as objects in an S3-compatible bucket (AWS S3, MinIO, R2, ...),
so gateways and workers on different machines share files with no common
volume. Keys are `<prefix><video_id>/<variant>.<ext>`.

A put is one PutObject: S3 makes an object visible only once its whole body
has arrived, so a reader never sees half a file, and an upload cut short
leaves nothing behind under the key (a rerun puts the object again). A file
put piece by piece (`writer`) gathers in a local temp file first, then goes
in one PutObject from it, read as it is sent; read back piece by piece
(`pieces`), it is one ranged GetObject whose body is read a piece at a time.

One boto3 client per store, shared by the threads that call it (boto3
clients are thread-safe; sessions are not, so the session is used only
here, once). Failures reach callers as `StorageError`, an OSError, which
they already treat as a disk that refuses.
"""
from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Callable, Generator
from typing import IO, TYPE_CHECKING, Any

from gateway.video.assets import PIECE, VARIANTS, Asset, AssetWriter, file_name, folder_of

if TYPE_CHECKING:
    from gateway.config.schema import S3AssetsConfig

log = logging.getLogger("gateway.video")

_MISSING = {"404", "NoSuchKey", "NotFound"}
_POOL = 32                # connections: runners and downloads each hold one per call, from the default thread pool
_LIST_PAGE = 1000           # keys a listing answers at most (S3's own most)
_DELETE_BATCH = 1000      # DeleteObjects takes at most this many keys


class StorageError(OSError):
    """The object store refused a call or could not be reached."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


class S3Assets:
    def __init__(self, cfg: S3AssetsConfig) -> None:
        try:   # the `s3` extra, loaded only by configs that store files in a bucket
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise RuntimeError("videos.assets type s3 needs boto3: install the s3 extra "
                               "(pip install 'gateway[s3]')") from None
        self._errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
        quiet = logging.getLogger("botocore")    # its debug lines carry request headers: a session token among them
        if quiet.getEffectiveLevel() < logging.INFO:
            quiet.setLevel(logging.INFO)
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix
        self.downloads = cfg.downloads
        self.presign_ttl_s = cfg.presign_ttl_s
        # Empty values fall through to the standard chain (environment, config files, instance role).
        session = boto3.session.Session(aws_access_key_id=cfg.access_key_id or None,
                                        aws_secret_access_key=cfg.secret_access_key or None,
                                        aws_session_token=cfg.session_token or None,
                                        region_name=cfg.region or None)
        self._client = session.client(
            "s3", endpoint_url=cfg.endpoint_url or None,
            config=Config(connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s,
                          retries={"max_attempts": cfg.retries, "mode": "standard"},
                          signature_version="s3v4",    # presigned URLs too: SigV2 is refused by newer regions
                          s3={"addressing_style": cfg.addressing_style}, max_pool_connections=_POOL))

    def _key(self, video_id: str, variant: str) -> str:
        return f"{self.prefix}{folder_of(video_id)}/{file_name(variant)}"

    def put(self, video_id: str, variant: str, data: bytes) -> Asset:
        key = self._key(video_id, variant)
        media_type = VARIANTS[variant][1]
        self._call(self._client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=media_type)
        return Asset(key, len(data), media_type)

    def put_all(self, video_id: str, files: dict[str, bytes]) -> None:
        for variant, data in files.items():
            self.put(video_id, variant, data)

    def writer(self, video_id: str, variant: str) -> AssetWriter:
        return _BucketWriter(self, self._key(video_id, variant), VARIANTS[variant][1])

    def put_file(self, key: str, file: IO[bytes], size: int, media_type: str) -> Asset:
        """`size` bytes of `file`, from its start, as the object `key` (botocore reads the file as it sends)."""
        file.seek(0)
        self._call(self._client.put_object, Bucket=self.bucket, Key=key, Body=file, ContentLength=size,
                   ContentType=media_type)
        return Asset(key, size, media_type)

    def get(self, video_id: str, variant: str) -> Asset | None:
        key = self._key(video_id, variant)
        head = self._call(self._client.head_object, Bucket=self.bucket, Key=key, missing_ok=True)
        if head is None:
            return None
        return Asset(key, int(head["ContentLength"]), head.get("ContentType") or VARIANTS[variant][1])

    def read(self, asset: Asset, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end] inclusive (HTTP Range semantics); the whole object by default."""
        last = asset.size - 1 if end is None else min(end, asset.size - 1)
        if last < start:
            return b""
        answer = self._call(self._client.get_object, Bucket=self.bucket, Key=asset.location,
                            Range=f"bytes={start}-{last}", missing_ok=True)
        if answer is None:   # deleted since `get` (expiry): as a file gone from a folder
            raise FileNotFoundError(errno.ENOENT, f"object {asset.location} is gone")
        return self._body(answer)

    def pieces(self, asset: Asset, start: int = 0, end: int | None = None) -> Generator[bytes, None, None]:
        last = asset.size - 1 if end is None else min(end, asset.size - 1)
        if last < start:
            return
        answer = self._call(self._client.get_object, Bucket=self.bucket, Key=asset.location,
                            Range=f"bytes={start}-{last}", missing_ok=True)
        if answer is None:
            raise FileNotFoundError(errno.ENOENT, f"object {asset.location} is gone")
        body = answer["Body"]
        try:
            chunks = body.iter_chunks(PIECE)
            while True:
                try:
                    piece = next(chunks, b"")
                except self._errors as e:    # the connection dropped mid-body
                    raise StorageError(f"S3 get_object was cut short ({type(e).__name__})") from None
                if not piece:
                    return
                yield piece
        finally:
            body.close()

    def read_whole(self, video_id: str, variant: str) -> bytes | None:
        answer = self._call(self._client.get_object, Bucket=self.bucket, Key=self._key(video_id, variant),
                            missing_ok=True)
        return None if answer is None else self._body(answer)

    def delete(self, video_id: str) -> bool:
        """Every variant of the video: all keys under its folder (the slash keeps `abc` from taking `abcd`).
        Best effort, as a folder's removal is: a store that refuses is logged, and the objects stay."""
        folder = f"{self.prefix}{folder_of(video_id)}/"
        keys: list[str] = []
        try:
            token: dict[str, Any] = {}
            while True:
                page = self._call(self._client.list_objects_v2, Bucket=self.bucket, Prefix=folder,
                                  MaxKeys=_LIST_PAGE, **token)
                keys += [item["Key"] for item in page.get("Contents", ())]
                if not page.get("IsTruncated"):
                    break
                token = {"ContinuationToken": page["NextContinuationToken"]}
            for i in range(0, len(keys), _DELETE_BATCH):
                batch = keys[i:i + _DELETE_BATCH]
                answer = self._call(self._client.delete_objects, Bucket=self.bucket,
                                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
                refused = [e for e in answer.get("Errors", ()) if e.get("Code") not in _MISSING]
                if refused:
                    raise StorageError(f"S3 refused to delete {len(refused)} object(s) ({refused[0].get('Code')})")
        except StorageError as e:
            log.warning("video %s: its files in bucket %s were not all deleted: %s", video_id, self.bucket, e)
            return False
        return bool(keys)

    def download_url(self, asset: Asset, filename: str) -> str | None:
        """With `downloads: redirect`, a GET URL signed for `presign_ttl_s`: the client fetches the
        object from the bucket, Range requests included, and the gateway sends no bytes."""
        if self.downloads != "redirect":
            return None
        try:   # signed here, from the credentials: no call to the store (unless the chain must fetch them)
            return str(self._client.generate_presigned_url(
                "get_object", ExpiresIn=self.presign_ttl_s,
                Params={"Bucket": self.bucket, "Key": asset.location,
                        "ResponseContentDisposition": f'inline; filename="{filename}"'}))
        except self._errors as e:
            raise StorageError(f"S3 download link could not be signed ({type(e).__name__})") from None

    def _call(self, operation: Callable[..., Any], *, missing_ok: bool = False, **params: Any) -> Any:
        """One S3 operation (botocore retries throttling, 5xx and dropped connections);
        None for an object that is not there, where `missing_ok`."""
        try:
            return operation(**params)
        except self._errors as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if missing_ok and code in _MISSING:
                return None
            # The code or the class names the failure; never the message, which may quote the request.
            raise StorageError(f"S3 {operation.__name__} failed ({code or type(e).__name__})") from None

    def _body(self, answer: dict[str, Any]) -> bytes:
        body = answer["Body"]
        try:
            return bytes(body.read())
        except self._errors as e:    # the connection dropped mid-body (botocore checks the length)
            raise StorageError(f"S3 get_object was cut short ({type(e).__name__})") from None
        finally:
            body.close()


class _BucketWriter:
    """A file gathered in a local temp file (unnamed where the system allows), put as one object when
    committed: S3 takes no appends, and an upload in parts would need 5 MB held per part."""

    def __init__(self, store: S3Assets, key: str, media_type: str) -> None:
        self._store, self._key, self._media_type = store, key, media_type
        self._file: IO[bytes] | None = tempfile.TemporaryFile(buffering=0)
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self._file is not None, "written after commit or discard"
        fd, view = self._file.fileno(), memoryview(data)
        while view:     # a write may take part of it
            view = view[os.write(fd, view):]
        self.size += len(data)

    def commit(self) -> Asset:
        assert self._file is not None, "committed twice, or after discard"
        file, self._file = self._file, None
        try:
            return self._store.put_file(self._key, file, self.size, self._media_type)
        finally:
            file.close()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
