"""Which scenario sources a runner may open: network URLs through the SSRF guard, files only under the
media root. Checked when a scenario is created (422 naming `source`) and again by the runner right
before it opens the source (a runner may have another media root or allow-list than the API)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from loguru import logger

from vigil.core.config import Settings
from vigil.core.ssrf import AllowList, TargetRefused, check_target, url_endpoint

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
SCHEMES = NETWORK_SCHEMES | {"file"}


class SourceRefused(ValueError):
    """The source is of a scheme we do not open, outside the media root, or an internal address."""


@dataclass(frozen=True)
class SourcePolicy:
    media_root: Path
    allow: AllowList

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        return cls(settings.media_dir, AllowList.parse(settings.scenario_allowed_hosts))


def scheme_of(source: str) -> str | None:
    """The URL scheme, or None for a bare path."""
    return urlsplit(source).scheme.lower() if "://" in source else None


def local_path(source: str, media_root: Path) -> Path:
    """The real file a `file://` URL or bare path names (relative paths are under the media root),
    with symlinks and `..` resolved; SourceRefused unless it lies under the (real) media root."""
    if scheme_of(source) == "file":
        url = urlsplit(source)
        if url.netloc not in ("", "localhost"):
            raise SourceRefused("a file URL must name a local file (file:///path)")
        raw = unquote(url.path)
    else:
        raw = source
    root = Path(os.path.realpath(media_root))
    path = Path(raw)
    real = Path(os.path.realpath(path if path.is_absolute() else root / path))
    if not real.is_relative_to(root):
        raise SourceRefused("a file source must be under the media root (VIGIL_MEDIA_ROOT)")
    return real


async def vet_source(source: str, policy: SourcePolicy) -> str:
    """What to hand OpenCV for `source`: the checked URL, or the real absolute path (never a string
    FFmpeg could read as one of its own protocols, such as `concat:`). Raises SourceRefused."""
    scheme = scheme_of(source)
    if scheme is None or scheme == "file":
        return str(local_path(source, policy.media_root))
    if scheme not in NETWORK_SCHEMES:
        raise SourceRefused(f"source scheme must be one of {', '.join(sorted(SCHEMES))} (or a file path)")
    host, port = url_endpoint(source)
    if not host:
        raise SourceRefused("source URL has no host")
    try:
        await check_target(host, port, policy.allow)
    except TargetRefused as exc:
        logger.info("scenario source refused: {}", exc)
        raise SourceRefused(
            "source host refused: not a public address and not in VIGIL_SCENARIO_ALLOWED_HOSTS"
        ) from None
    return source
