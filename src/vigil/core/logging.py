"""Loguru for everything: stdlib and uvicorn logs are routed through it, secrets are redacted."""

from __future__ import annotations

import inspect
import logging
import re
import sys
import time
from typing import Any, TextIO

from loguru import logger

# API keys in query strings (WebSocket `?token=`), headers echoed by libraries, and URL passwords: one
# pattern, one pass. Each alternative keeps its named prefix and masks what follows.
_REDACT = re.compile(
    r"(?P<kv>(?i:\b(?:token|api_key|apikey|key|password|secret))=)[^&\s\"']+"
    r"|(?P<bearer>(?i:authorization:\s*bearer\s+))\S+"
    r"|(?P<xkey>(?i:x-api-key:\s*))\S+"
    r"|(?P<vgl>\bvgl_[0-9a-f]{12})_[A-Za-z0-9_\-]+"
    r"|(?P<url>[a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@/\s]+@"
)
_SUFFIX = {"kv": "***", "bearer": "***", "xkey": "***", "vgl": "_***", "url": "***@"}


def _mask(match: re.Match[str]) -> str:
    group = match.lastgroup or "kv"
    return match.group(group) + _SUFFIX[group]


def redact(text: str) -> str:
    """Strip credentials from a log line."""
    # Every secret pattern needs "=", ":" or "vgl_": most lines (the access line) skip the regex entirely.
    if "=" not in text and ":" not in text and "vgl_" not in text:
        return text
    return _REDACT.sub(_mask, text)


class InterceptHandler(logging.Handler):
    """Send stdlib records (uvicorn, aiokafka, sqlalchemy, alembic) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _patch(record: dict[str, Any]) -> None:
    record["message"] = redact(record["message"])
    extra = record["extra"]
    record["extra"]["ctx"] = " ".join(f"{k}={v}" for k, v in extra.items() if k != "ctx")


_FORMAT = (
    "<green>{time:YYYY-MM-DDTHH:mm:ss.SSSZ}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message} <dim>{extra[ctx]}</dim>"
)


class AccessLog:
    """The one line per request, written as the stderr sink formats it, without loguru's per-record work.

    Loguru spent about 30 us on each access line (the caller's frame, a record, the time format, a lock),
    a quarter of a `/liveness` request. While the sink `setup_logging` added is loguru's only one, is not
    a terminal and is not JSON, the line is formatted here (the time string is kept for the second it is
    in) and written to the same stream. Otherwise, such as a test that adds a sink, a terminal with
    colours or JSON lines, the line goes through loguru as any other.
    """

    def __init__(self) -> None:
        self._stream: TextIO | None = None
        self._handler_id: int | None = None
        self._second = -1
        self._stamp = ""
        self._zone = ""

    def configure(self, stream: TextIO | None, handler_id: int | None) -> None:
        """Write straight to `stream` while loguru's handlers are just `handler_id`; None: always loguru."""
        self._stream, self._handler_id, self._second = stream, handler_id, -1

    def _direct(self) -> TextIO | None:
        handlers = logger._core.handlers  # type: ignore[attr-defined]  # loguru is pinned; test_logging checks
        if self._stream is not None and len(handlers) == 1 and self._handler_id in handlers:
            return self._stream
        return None

    def _time(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            local = time.localtime(second)
            offset = local.tm_gmtoff
            sign = "+" if offset >= 0 else "-"
            self._zone = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local)
            self._second = second
        return f"{self._stamp}.{int((now - second) * 1000):03d}{self._zone}"

    def write(self, message: str, request_id: str) -> None:
        """Log `message` at INFO with the request id, from vigil.core.middleware."""
        stream = self._direct()
        if stream is None:
            with logger.contextualize(request_id=request_id):
                logger.opt(depth=1).info("{}", message)
            return
        stream.write(f"{self._time()} INFO    vigil.core.middleware {redact(message)} request_id={request_id}\n")


ACCESS_LOG = AccessLog()


def stdlib_level(level: str) -> int:
    """The stdlib level for a loguru level name (TRACE is 5, as uvicorn defines it)."""
    name = level.upper()
    if name == "TRACE":
        return 5
    return logging.getLevelNamesMapping().get(name, logging.INFO)


def setup_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure loguru once per process and take over the stdlib root logger."""
    logger.remove()
    logger.configure(patcher=_patch)  # type: ignore[arg-type]
    handler_id = logger.add(sys.stderr, level=level.upper(), format=_FORMAT, serialize=json, backtrace=False,
                            diagnose=False)
    direct = not json and not sys.stderr.isatty() and logger.level(level.upper()).no <= logger.level("INFO").no
    ACCESS_LOG.configure(sys.stderr if direct else None, handler_id)
    # The stdlib level follows ours. Level 0 (NOTSET) would pass every record to loguru only to drop it, and
    # uvicorn, seeing its logger at or below TRACE, would wrap the app in MessageLoggerMiddleware and format
    # every ASGI message of every request.
    std_level = stdlib_level(level)
    logging.basicConfig(handlers=[InterceptHandler()], level=std_level, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler()]
        std.propagate = False
        std.setLevel(std_level)
    # Vigil logs one line per request itself; uvicorn's access log would duplicate it (and its query strings).
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "httpx", "httpcore", "asyncio", "alembic.runtime"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
