"""Domain errors and the handlers that turn every error into RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
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


class MalformedRequest(DomainError):
    """A body that is not even parseable (invalid JSON); a body that parses but breaks the schema is 422."""

    status, title = 400, "Malformed request"


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


class TooManyRequests(DomainError):
    status, title = 429, "Too many requests"


class ServiceUnavailable(DomainError):
    """A dependency or a work queue cannot take the request now; answered with `Retry-After`."""

    status, title = 503, "Service unavailable"
    retry_after_s: int = 1

    def __init__(self, detail: str | None = None, *, retry_after_s: int | None = None, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        headers.setdefault("Retry-After", str(retry_after_s if retry_after_s is not None else self.retry_after_s))
        super().__init__(detail, headers=headers, **kw)


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
    if any(e["loc"][:1] == ["path"] for e in errors) and request.scope["type"] == "http":
        # PUT /people/directory reaches PUT /people/{person_id} and fails there on the id, but the path
        # names the GET-only /people/directory: the method is what is wrong (405), not the id (422).
        literal = allowed_methods(request, literal_only=True)
        if literal and request.method not in literal:
            return problem(405, None, f"{request.method} is not allowed on {request.url.path}.",
                           headers={"Allow": ", ".join(literal)}, instance=request.url.path)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "Malformed JSON", "The request body is not valid JSON.", errors=errors,
                       instance=request.url.path)
    return problem(422, "Validation failed", "The request does not match the schema.", errors=errors,
                   instance=request.url.path)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail in (None, "Not Found"):
        detail = f"No route matches {request.method} {request.url.path}."
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        if detail in (None, "Method Not Allowed"):
            detail = f"{request.method} is not allowed on {request.url.path}."
        # Starlette's Allow names the methods of the first route matching the path; a path served by
        # several routes (GET and POST /cameras) allows the methods of all of them.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem(exc.status_code, None, detail, headers=headers, instance=request.url.path)


def allowed_methods(request: Request, *, literal_only: bool = False) -> list[str]:
    """The methods served on this request's path (the 405 `Allow` header).

    Starlette's Allow names the methods of the first route matching the path; a path served by several
    routes (GET and POST /cameras) allows the methods of all of them. Only routes with the same path
    template as the first match count: `/zones/stats` is not also `/zones/{zone_id}`. `literal_only`
    looks only at routes without parameters (is there a fixed path like `/people/directory` here?).
    """
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Match

    template: str | None = None
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            continue
        match, _ = route.matches({**request.scope, "method": next(iter(route_methods))})
        if match is not Match.FULL or (literal_only and "{" in (route.path_format or "")):
            continue
        template = template or route.path_format
        if route.path_format == template:
            methods |= set(route_methods)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: order.index(m) if m in order else len(order))


async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    # Services check the conflicts they expect; this is the safety net for races between them.
    logger.warning("integrity error on {} {}: {}", request.method, request.url.path, exc.orig)
    return problem(409, "Conflict", "The change conflicts with existing data.", instance=request.url.path)


# Data exceptions (SQLSTATE class 22) that only a value sent by the client causes: the database
# refuses the value itself, so the answer is 422 like any other invalid value. The rest of class 22
# (division by zero, bad casts in our own SQL...) are bugs and stay 500.
_BAD_VALUE_SQLSTATES = {
    "22001": "A text value is longer than its field allows.",
    "22003": "A number is out of the range that can be stored.",
    "22008": "A date or time is out of the range that can be stored.",
    "22021": "Text must not contain NUL (\\u0000) characters.",  # 0x00 in a text value
    "22P05": "Text must not contain NUL (\\u0000) characters.",  # \u0000 inside a JSON value
}
_BAD_JSON = "JSON numbers must be finite: NaN and Infinity cannot be stored."


def bad_value_reason(exc: DBAPIError) -> str | None:
    """Why the database refused a value of the request, or None when the error is not about a value.

    Server side, by SQLSTATE. Client side, asyncpg refuses to encode a Python int beyond 64 bits or a
    datetime whose UTC form leaves years 1-9999, raising OverflowError before anything is sent.
    """
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _BAD_VALUE_SQLSTATES:
        return _BAD_VALUE_SQLSTATES[sqlstate]
    if sqlstate == "22P02" and "type json" in str(orig):  # Python's json writes NaN, PostgreSQL refuses it
        return _BAD_JSON
    cause: BaseException | None = orig
    for _ in range(5):
        if cause is None:
            break
        if isinstance(cause, OverflowError):
            return _BAD_VALUE_SQLSTATES["22008" if "date" in str(cause) else "22003"]
        cause = cause.__cause__
    return None


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    reason = bad_value_reason(exc)
    if reason is not None:
        logger.warning("database refused a value on {} {}: {}", request.method, request.url.path, exc.orig)
        return problem(422, "Validation failed", reason, instance=request.url.path)
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        logger.error("database unavailable on {} {}: {}", request.method, request.url.path, exc.orig)
        return problem(503, "Database unavailable", "The database is not reachable; try again shortly.",
                       instance=request.url.path)
    return await _unhandled(request, exc)


async def _connection_refused(request: Request, exc: OSError) -> JSONResponse:
    logger.error("dependency unreachable on {} {}: {!r}", request.method, request.url.path, exc)
    return problem(503, "Dependency unavailable", "A service this request needs is not reachable.",
                   instance=request.url.path)


async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
    # Every connection of the pool stayed busy for pool_timeout: overload, not a bug. Ask to come back.
    logger.warning("database pool exhausted on {} {}: {}", request.method, request.url.path, exc)
    return problem(503, "Database busy", "No database connection was free in time; try again shortly.",
                   headers={"Retry-After": "1"}, instance=request.url.path)


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
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _pool_timeout)  # type: ignore[arg-type]
    app.add_exception_handler(ConnectionRefusedError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(TimeoutError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(RedisConnectionError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(RedisTimeoutError, _connection_refused)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
