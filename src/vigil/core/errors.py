"""Domain errors and the handlers that turn every error into RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base of every expected error; services raise these, one handler maps them to problem+json."""

    status: int = 400
    title: str = "Bad request"
    type: str = "about:blank"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers
        self.extra = extra


class BadRequest(DomainError):
    status, title = 400, "Bad request"


class Unauthorized(DomainError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    status, title = 403, "Forbidden"


class NotFound(DomainError):
    status, title = 404, "Not found"


class Conflict(DomainError):
    status, title = 409, "Conflict"


class InvalidState(Conflict):
    title = "Invalid state transition"


class PayloadTooLarge(DomainError):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(DomainError):
    status, title = 415, "Unsupported media type"


class ValidationFailed(DomainError):
    """A payload that parses but breaks a rule (bad polygon, unknown reference)."""

    status, title = 422, "Validation failed"


class ServiceUnavailable(DomainError):
    status, title = 503, "Service unavailable"


def problem(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build one problem+json response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or title or HTTPStatus(status).phrase,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic error list without the raw input/context objects, which may not serialise."""
    out = []
    for err in errors:
        item = {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        out.append(item)
    return out


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        type_=exc.type,
        instance=request.url.path,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = _jsonable_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "Malformed JSON", "The request body is not valid JSON.", errors=errors,
                       instance=request.url.path)
    return problem(422, "Validation failed", "The request does not match the schema.", errors=errors,
                   instance=request.url.path)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail in (None, "Not Found"):
        detail = f"No route matches {request.method} {request.url.path}."
    if exc.status_code == 405 and detail in (None, "Method Not Allowed"):
        detail = f"{request.method} is not allowed on {request.url.path}."
    return problem(exc.status_code, None, detail, headers=getattr(exc, "headers", None),
                   instance=request.url.path)


async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    # Services check the conflicts they expect; this is the safety net for races between them.
    logger.warning("integrity error on {} {}: {}", request.method, request.url.path, exc.orig)
    return problem(409, "Conflict", "The change conflicts with existing data.", instance=request.url.path)


async def _database_unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        logger.error("database unavailable on {} {}: {}", request.method, request.url.path, exc.orig)
        return problem(503, "Database unavailable", "The database is not reachable; try again shortly.",
                       instance=request.url.path)
    return await _unhandled(request, exc)


async def _connection_refused(request: Request, exc: OSError) -> JSONResponse:
    logger.error("dependency unreachable on {} {}: {!r}", request.method, request.url.path, exc)
    return problem(503, "Dependency unavailable", "A service this request needs is not reachable.",
                   instance=request.url.path)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.opt(exception=exc).error("unhandled error on {} {}", request.method, request.url.path)
    return problem(500, "Internal server error", "Something went wrong on our side; it has been logged.",
                   instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of error to a problem+json response."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(WebSocketRequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _integrity_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(ConnectionRefusedError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(TimeoutError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(RedisConnectionError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(RedisTimeoutError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
