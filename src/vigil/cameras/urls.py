"""Stream URL rules: which schemes a camera may use, and how its password is kept out of sight."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
MASK = "***"


def _netloc(parts: SplitResult, password: str | None) -> str:
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is None and password is None:
        return host
    user = parts.username or ""
    return f"{user}:{password}@{host}" if password is not None else f"{user}@{host}"


def validate_stream_url(url: str) -> str:
    """Return the URL if it is an rtsp/rtsps/http(s) URL with a host, else raise ValueError."""
    if any(ch.isspace() for ch in url):
        raise ValueError("must not contain whitespace")
    parts = urlsplit(url)
    if parts.scheme.lower() not in STREAM_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(STREAM_SCHEMES)}")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return url


def mask_password(url: str) -> str:
    """`rtsp://user:secret@host/x` -> `rtsp://user:***@host/x`; URLs without a password unchanged."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return urlunsplit(parts._replace(netloc=_netloc(parts, MASK)))
    except ValueError:
        # Never echo something we cannot parse if it may hold a password.
        return f"{url.split('://', 1)[0]}://{MASK}" if "@" in url else url


def keep_masked_password(new_url: str, old_url: str) -> str:
    """A client that sends back the masked URL keeps the stored password (same user and host)."""
    new, old = urlsplit(new_url), urlsplit(old_url)
    if new.password != MASK:
        return new_url
    if old.password is None or new.username != old.username or new.hostname != old.hostname:
        raise ValueError("the masked password can only be kept for the same user and host")
    return urlunsplit(new._replace(netloc=_netloc(new, old.password)))
