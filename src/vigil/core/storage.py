"""Blob storage behind a small interface: a local directory by default.

Keys are content-addressed by the callers (`content_key`), so writing the same bytes twice is a
no-op and blobs never need locking. An S3-compatible backend implements the same four methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


def content_key(data: bytes, *, prefix: str, ext: str) -> str:
    """`<prefix>/<aa>/<sha256>.<ext>`: stable for the same bytes, spread over 256 folders."""
    return key_for_digest(hashlib.sha256(data).hexdigest(), prefix=prefix, ext=ext)


def key_for_digest(digest: str, *, prefix: str, ext: str) -> str:
    """content_key for bytes whose SHA-256 the caller already has (large files: hash once, off the loop)."""
    return f"{prefix}/{digest[:2]}/{digest}.{ext.lstrip('.')}"


class BlobStore(Protocol):
    backend: str

    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...
    async def check(self) -> None: ...


class LocalBlobStore:
    """Files under one directory; writes are atomic (temp file + rename)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

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
