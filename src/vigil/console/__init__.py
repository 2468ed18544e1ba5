"""The operator console (static files at /console/) and offline /docs and /redoc (vendored assets).

Nothing here talks to the database: the console is a client of the public API like any other, and
the pages need no key (the calls they make do). Everything is served from the package, so a machine
with no internet gets a working console and working API docs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = Path(__file__).parent / "vendor"

# Pinned versions of what is vendored under vendor/ (licences kept beside each bundle).
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"

# Only this origin: scripts, styles, images (blob: for images fetched with the key), API and WebSockets.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class _ConsoleFiles(StaticFiles):
    """Static files with a same-origin-only Content-Security-Policy and no caching of stale code."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONSOLE_CSP.encode()))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    """Serve /console/, /docs and /redoc from the package; create the app with docs_url=None, redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
    app.mount("/console", _ConsoleFiles(directory=STATIC_DIR, html=True), name="console")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"/static/vendor/swagger-ui/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"/static/vendor/swagger-ui/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
            # The online validator badge would call validator.swagger.io: keep everything on this host.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"/static/vendor/redoc/redoc.standalone.js?v={REDOC_VERSION}",
            redoc_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get("/console", include_in_schema=False)
    async def console_redirect() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)
