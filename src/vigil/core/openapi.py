"""A truthful OpenAPI document, built in one place from the error classes and each route's shape.

Every route's error answers are declared here, once, instead of by hand in every router:
- 400 malformed JSON and 422 validation failure where a route takes a body or parameters;
- 401/403 (and 429, the rate limit) where the global `authorize` dependency guards the route;
- 404 where the path names a resource; 409 for writes (duplicates, and the IntegrityError safety net);
- 413 where a body is read (the body limit), 415 for uploads;
- 503 where the route reaches the database or another dependency (the dependency-down handlers).
Routers may still declare more with `problems(SomeError, ...)`; every 4xx/5xx entry of the document,
however it got there, is answered as `application/problem+json` with the `Problem` model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from vigil.core import errors as e
from vigil.core.deps import get_session
from vigil.core.security import authorize

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The class that answers each documented status: its title is the description in the document.
STATUS_CLASSES: dict[int, type[e.DomainError]] = {
    400: e.MalformedRequest,
    401: e.Unauthorized,
    403: e.Forbidden,
    404: e.NotFound,
    409: e.Conflict,
    413: e.PayloadTooLarge,
    415: e.UnsupportedMediaType,
    422: e.ValidationFailed,
    429: e.TooManyRequests,
    503: e.ServiceUnavailable,
}


class ProblemItem(BaseModel):
    """One field-level reason inside a problem (`errors[]`)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(default_factory=list)
    msg: str = ""
    type: str = ""


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error answer; domains may add members."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int = Field(ge=100, le=599)
    detail: str
    instance: str | None = None
    errors: list[ProblemItem] | None = None


def problems(*classes: type[e.DomainError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error classes: problem+json, described by the classes' titles."""
    out: dict[int | str, dict[str, Any]] = {}
    for cls in classes:
        desc = out.get(cls.status, {}).get("description")
        out[cls.status] = {"description": f"{desc}; {cls.title}" if desc else cls.title}
    return out


def _calls(route: Any) -> list[Callable[..., Any]]:
    """Every dependency callable of a route, nested ones included."""
    found: list[Callable[..., Any]] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def route_statuses(route: Any) -> set[int]:
    """The error statuses `route` can answer with, from its dependencies, path, method and body."""
    calls = _calls(route)
    names = {getattr(c, "__name__", "") for c in calls}
    public = getattr(route.endpoint, "__vigil_public__", False)
    authorized = authorize in calls and not public
    dependant = route.dependant
    has_params = bool(dependant.path_params or dependant.query_params or dependant.header_params
                      or dependant.cookie_params or route.body_field is not None)
    uses_db = authorized or get_session in calls or "get_session" in names
    statuses: set[int] = set()
    if authorized:
        statuses |= {401, 403, 429}
    if "{" in route.path_format:
        statuses.add(404)
    if route.methods & WRITE_METHODS and uses_db:
        statuses.add(409)
    takes_body = route.body_field is not None or bool(route.methods & {"POST", "PUT", "PATCH"})
    if has_params or takes_body:  # a route may read its body itself (plates' multipart ingest)
        statuses.add(422)
    if takes_body:
        statuses |= {400, 413}
        if dependant.body_params and any(_is_form(p) for p in dependant.body_params):
            statuses.add(415)
    if uses_db:
        statuses.add(503)
    return statuses


def _is_form(param: Any) -> bool:
    from fastapi.params import Form

    return isinstance(getattr(param, "field_info", None), Form)


def _problem_content(ref: str) -> dict[str, Any]:
    return {e.PROBLEM_JSON: {"schema": {"$ref": ref}}}


def api_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """Every API route as served, included routers flattened (FastAPI includes them lazily)."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every route's error answers declared as problem+json."""
    doc = get_openapi(
        title=app.title, version=app.version, openapi_version=app.openapi_version, summary=app.summary,
        description=app.description, routes=app.routes, tags=app.openapi_tags, servers=app.servers,
    )
    paths = doc.get("paths", {})
    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        statuses = route_statuses(route)
        for method in route.methods:
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses.setdefault(str(status), {"description": STATUS_CLASSES[status].title})
            operation["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    ref = "#/components/schemas/Problem"
    for path_item in paths.values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, response in operation["responses"].items():
                if str(code)[0] not in "45":
                    continue
                if response.get("description") == "Validation Error":
                    response["description"] = e.ValidationFailed.title
                schema = (response.get("content") or {}).get("application/json", {}).get("schema", {})
                # A route that documents its own error body (/health's 503 is a Health) keeps it.
                if schema and not schema.get("$ref", "").endswith("/HTTPValidationError"):
                    continue
                response["content"] = _problem_content(ref)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json, /docs) serve the document built by `build_openapi`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
