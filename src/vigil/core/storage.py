"""Blob storage behind a small interface: a local directory by default, S3 when `S3_BUCKET` is set.

Keys are content-addressed by the callers (`content_key`), so writing the same bytes twice is a
no-op and blobs never need locking against each other. What does need care is deleting: two rows
may share one key, and a new row may be about to reference a key whose last old row is going away.
So a writer holds a *shared* advisory lock on the key until its transaction ends (`claim_blob`), and
`delete_unreferenced` takes the *exclusive* lock, asks the domain whether anything still references
the key, and only then deletes the blob.

The S3 backend uses obstore (Rust `object_store`): measured against moto's server it put and got
200 kB objects about 4x faster than aiobotocore on this 2-core machine, imports in ~10 ms instead of
~900 ms, and pulls in no botocore/aiohttp at run time (bench numbers in README "Blob storage").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from sqlalchemy import ARRAY, BigInteger, ColumnElement, bindparam, func, select

from vigil.core.db import after_commit, create_sessionmaker, session_scope
from vigil.core.errors import ServiceUnavailable

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from vigil.core.config import Settings

# Reads are streamed to the client in pieces of about this size.
CHUNK_BYTES = 256 * 1024


def content_key(data: bytes, *, prefix: str, ext: str) -> str:
    """`<prefix>/<aa>/<sha256>.<ext>`: stable for the same bytes, spread over 256 folders."""
    return key_for_digest(hashlib.sha256(data).hexdigest(), prefix=prefix, ext=ext)


def key_for_digest(digest: str, *, prefix: str, ext: str) -> str:
    """content_key for bytes whose SHA-256 the caller already has (large files: hash once, off the loop)."""
    return f"{prefix}/{digest[:2]}/{digest}.{ext.lstrip('.')}"


def check_key(key: str) -> str:
    """`key` if it names something inside a store: relative, with no empty, `.` or `..` segment; else
    ValueError. Every backend checks keys with this one rule."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"blob key escapes the store: {key!r}")
    return key


class StorageUnavailable(ServiceUnavailable):
    title = "Blob storage unavailable"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kw)


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """A missing object is FileNotFoundError (callers answer 404); any other failure is a 503."""
    from obstore.exceptions import BaseError, NotFoundError

    try:
        yield
    except NotFoundError as exc:
        raise FileNotFoundError(key) from exc
    except (BaseError, OSError, TimeoutError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        logger.error("S3 call for {!r} failed: {}: {}", key, type(exc).__name__, str(exc).split("\n", 1)[0][:300])
        raise StorageUnavailable(f"Blob storage cannot be reached: {type(exc).__name__}.") from exc


@dataclass
class BlobBody:
    """An opened blob: its size and its bytes as an async stream of chunks (read it once)."""

    size: int | None
    chunks: AsyncIterator[bytes]


class BlobStore(Protocol):
    backend: str

    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def open(self, key: str) -> BlobBody: ...
    async def delete(self, key: str) -> None: ...
    async def delete_many(self, keys: Iterable[str]) -> None: ...
    async def exists(self, key: str) -> bool: ...
    async def check(self) -> None: ...
    async def presign(self, key: str, *, expires_s: float) -> str | None: ...


class LocalBlobStore:
    """Files under one directory; writes are atomic (temp file + rename)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        # Checked by its text, not with Path.resolve(), which costs an lstat per path segment on every
        # put and read; only the store writes under its root, so there are no links to follow.
        return self.root / check_key(key)

    def _put(self, key: str, data: bytes) -> None:
        path = os.fspath(self._path(key))
        if os.path.exists(path):  # content-addressed: the same key holds the same bytes
            return
        # A temp file next to the target, renamed over it: readers see the whole blob or none. Its folder
        # is made only when the first write into it fails for want of it (a stat saved on every other put).
        tmp = os.path.join(os.path.dirname(path), f".tmp-{uuid.uuid4().hex}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def open(self, key: str) -> BlobBody:
        """Open now (a missing blob raises FileNotFoundError here, not mid-response), read in chunks."""
        fh = await asyncio.to_thread(self._path(key).open, "rb")
        size = os.fstat(fh.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(fh.read, CHUNK_BYTES):
                    yield chunk
            finally:
                fh.close()

        return BlobBody(size, chunks())

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            await self.delete(key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    def _check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # A private probe file: concurrent health checks must not delete each other's.
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".health-") as probe:
            probe.write(b"ok")
            probe.flush()

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    async def presign(self, key: str, *, expires_s: float) -> str | None:
        """A directory has no URLs of its own: callers serve the bytes themselves."""
        return None


class S3BlobStore:
    """One bucket of an S3-compatible service (AWS, MinIO, moto), through obstore's async calls."""

    backend = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None, access_key_id: str | None,
                 secret_access_key: str | None, region: str, timeout_s: float = 10.0) -> None:
        from obstore.store import S3Store

        config: S3Config = {"region": region}
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client_options: ClientConfig = {"timeout": f"{max(timeout_s, 0.1):.1f}s", "connect_timeout": "5s"}
        if endpoint_url:
            config["endpoint"] = endpoint_url
            # MinIO and moto are addressed by path (http://host:port/bucket/key), not by virtual host.
            config["virtual_hosted_style_request"] = False
            if endpoint_url.startswith("http://"):
                client_options["allow_http"] = True
        self.bucket = bucket
        # A few quick retries, bounded in time: a request waits seconds for S3, not obstore's minutes.
        retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=timeout_s),
                 "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=1),
                             "base": 2.0}}
        self.store = S3Store(bucket, config=config, client_options=client_options, retry_config=retry)

    async def put(self, key: str, data: bytes) -> None:
        import obstore

        # Same key, same bytes: overwriting is harmless, and cheaper than asking first.
        with _s3_errors(key):
            await obstore.put_async(self.store, check_key(key), data)

    async def get(self, key: str) -> bytes:
        import obstore

        with _s3_errors(key):
            result = await obstore.get_async(self.store, check_key(key))
            return bytes(await result.bytes_async())

    async def open(self, key: str) -> BlobBody:
        """Start the GET now (a missing blob raises FileNotFoundError here), stream the body after."""
        import obstore

        with _s3_errors(key):
            result = await obstore.get_async(self.store, check_key(key))

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
                yield bytes(chunk)

        return BlobBody(int(result.meta["size"]), chunks())

    async def delete(self, key: str) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Iterable[str]) -> None:
        import obstore

        paths = [check_key(k) for k in keys]
        for start in range(0, len(paths), 1000):  # S3 DeleteObjects takes up to 1000 keys
            with _s3_errors(paths[start]):  # a missing key is not an error
                await obstore.delete_async(self.store, paths[start:start + 1000])

    async def exists(self, key: str) -> bool:
        import obstore

        try:
            with _s3_errors(key):
                await obstore.head_async(self.store, check_key(key))
        except FileNotFoundError:
            return False
        return True

    async def check(self) -> None:
        """The bucket answers a listing (one page, one key): reachable, and the credentials work."""
        import obstore

        with _s3_errors("health/"):
            async for _ in obstore.list(self.store, prefix="health/", chunk_size=1):
                break

    async def presign(self, key: str, *, expires_s: float) -> str | None:
        import obstore

        with _s3_errors(key):
            return await obstore.sign_async(self.store, "GET", check_key(key),
                                            timedelta(seconds=expires_s))


def open_blob_store(settings: Settings) -> BlobStore:
    """S3 when `S3_BUCKET` is set, else the local directory under the data dir."""
    if settings.s3_bucket:
        store = S3BlobStore(
            bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key else None,
            region=settings.s3_region, timeout_s=max(settings.dependency_timeout_s * 5, 10.0),
        )
        logger.info("blobs in S3 bucket {} ({})", settings.s3_bucket, settings.s3_endpoint_url or "AWS")
        return store
    return LocalBlobStore(settings.blob_dir)


# --------------------------------------------------------------------------------------------
# Shared keys: claim before writing, delete only what nothing references
# --------------------------------------------------------------------------------------------


def blob_lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for one blob key."""
    return int.from_bytes(hashlib.sha256(b"vigil-blob:" + key.encode()).digest()[:8], "big", signed=True)


async def claim_blob(session: AsyncSession, key: str) -> None:
    """Hold a shared lock on `key` until this transaction ends, so no delete of the key's last old
    reference can remove the blob between our write of it and our commit of the row naming it."""
    await session.execute(select(func.pg_advisory_xact_lock_shared(blob_lock_id(key))))


_LOCK_IDS = bindparam("vigil_blob_locks", type_=ARRAY(BigInteger))


def claim_blobs_expression() -> ColumnElement[int]:
    """`claim_blob` for several keys, as a column to fold into a query the caller runs anyway: the number
    of keys claimed. The keys go in as `blob_lock_ids(keys)` under `BLOB_LOCKS_PARAM`; the locks are taken
    in that (sorted) order, the order deleters lock in, so a writer and a deleter cannot deadlock."""
    lock = func.unnest(_LOCK_IDS).table_valued("id").render_derived()  # a function scan: array order
    return (select(func.count(func.pg_advisory_xact_lock_shared(lock.c.id)))
            .select_from(lock).scalar_subquery())


BLOB_LOCKS_PARAM = _LOCK_IDS.key


def blob_lock_ids(keys: Iterable[str]) -> list[int]:
    """The advisory lock ids of `keys`, deduplicated, in the order every claimer and deleter uses."""
    return [blob_lock_id(key) for key in sorted(set(keys))]


Referenced = Callable[["AsyncSession", list[str]], Awaitable[set[str]]]


async def delete_unreferenced(sessionmaker: async_sessionmaker[AsyncSession], storage: BlobStore,
                              keys: Iterable[str], *, referenced: Referenced) -> int:
    """Delete the blobs among `keys` that no committed row references any more; returns how many.

    Call it after the rows that named the keys are committed. Each key's exclusive lock waits for
    writers that claimed it; `referenced(session, keys)` (the domain's query) then sees their rows.
    The connection is held across the blob deletes on purpose: the locks must outlive them.
    """
    wanted = sorted({k for k in keys if k})  # a fixed order: two deleters cannot deadlock
    if not wanted:
        return 0
    async with session_scope(sessionmaker) as session:
        for key in wanted:
            await session.execute(select(func.pg_advisory_xact_lock(blob_lock_id(key))))
        still = await referenced(session, wanted)
        gone = [k for k in wanted if k not in still]
        if gone:
            await storage.delete_many(gone)
    if gone:
        logger.info("deleted {} unreferenced blob(s) ({} still referenced)", len(gone), len(wanted) - len(gone))
    return len(gone)


def delete_after_commit(session: AsyncSession, storage: BlobStore, keys: Iterable[str], *,
                        referenced: Referenced) -> None:
    """Once this unit of work commits, delete those of `keys` that no row references any more."""
    wanted = [k for k in keys if k]
    if not wanted:
        return
    engine = session.bind

    async def run() -> None:
        await delete_unreferenced(create_sessionmaker(engine), storage, wanted,  # type: ignore[arg-type]
                                  referenced=referenced)

    after_commit(session, run)
