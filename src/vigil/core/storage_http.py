"""HTTP answers for stored blobs: a 307 to a short-lived presigned URL, or the bytes streamed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import RedirectResponse
from starlette.responses import Response, StreamingResponse

from vigil.core.config import Settings
from vigil.core.storage import BlobStore


async def blob_response(storage: BlobStore, settings: Settings, *, key: str, media_type: str,
                        headers: dict[str, str], missing: Callable[[], Exception]) -> Response:
    """With `VIGIL_BLOB_PRESIGN` and a backend that can sign (S3), redirect so large images do not
    pass through the app; else stream the blob (never read whole into memory). `missing()` is raised
    when the blob is gone."""
    if settings.blob_presign:
        url = await storage.presign(key, expires_s=settings.blob_presign_ttl_s)
        if url is not None:
            # The URL expires; a cache must not keep the redirect longer than that.
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})
    try:
        body = await storage.open(key)
    except FileNotFoundError:
        raise missing() from None
    out = dict(headers)
    if body.size is not None:
        out["Content-Length"] = str(body.size)
    return StreamingResponse(body.chunks, media_type=media_type, headers=out)
