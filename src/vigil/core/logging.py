"""Loguru for everything: stdlib and uvicorn logs are routed through it, secrets are redacted."""

from __future__ import annotations

import inspect
import logging
import re
import sys
from typing import Any

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
    logger.add(sys.stderr, level=level.upper(), format=_FORMAT, serialize=json, backtrace=False, diagnose=False)
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
