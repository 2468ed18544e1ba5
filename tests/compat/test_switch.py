"""VIGIL_COMPAT chooses the adapters, and every adapter route is behind the same keys and scopes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import auth
from vigil.core.config import Settings
from vigil.main import create_app

COMPAT_PATHS = ("/users", "/users-dict", "/stats/zones", "/api/v1/events/ingest", "/api/v1/config/cameras",
                "/api/v1/locations/{asset_id}/current", "/pics", "/find-similar", "/scenario/",
                "/prediction/{scenario_id}/")


def paths(app) -> set[str]:
    return set(app.openapi()["paths"])


def compat_operations(app) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation tagged `compat` in the app's OpenAPI document."""
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            for method, op in ops.items() if "compat" in op.get("tags", [])]


def test_none_removes_every_adapter(base_settings):
    on = create_app(base_settings)
    assert set(COMPAT_PATHS) <= paths(on)
    off = create_app(base_settings.model_copy(update={"compat": "none"}))
    assert not set(COMPAT_PATHS) & paths(off) and not compat_operations(off)
    assert "/api/v1/people" in paths(off)
    only = create_app(base_settings.model_copy(update={"compat": "kanta"}))
    assert "/pics" in paths(only) and "/users" not in paths(only)


def test_compat_setting_is_checked():
    assert Settings(_env_file=None, compat=" NONE ").compat_seeds == []
    assert Settings(_env_file=None, compat="reid, kanta").compat_seeds == ["reid", "kanta"]
    with pytest.raises(ValueError, match="unknown VIGIL_COMPAT"):
        Settings(_env_file=None, compat="reid,frigate")


def test_adapters_are_tagged_compat_in_openapi(base_settings):
    doc = create_app(base_settings).openapi()
    for path in ("/users", "/pics", "/scenario/"):
        for op in doc["paths"][path].values():
            assert op["tags"] == ["compat"]


def concrete(path: str) -> str:
    return (path.replace("{global_id}", "1").replace("{zone_id}", "Z1").replace("{key}", "Z1")
            .replace("{event_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{image_uuid}", "00000000-0000-0000-0000-000000000000")
            .replace("{asset_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{scenario_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{camera_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{model_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{sensor_id}", "00000000-0000-0000-0000-000000000000"))


async def test_every_compat_route_needs_a_key_and_its_scope(server, make_key):
    routes = compat_operations(server.app)
    assert len(routes) > 40
    read, ingest = await make_key("read"), await make_key("ingest")
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as c:
        for method, path in routes:
            url = concrete(path)
            anon = await c.request(method, url)
            assert anon.status_code == 401, (method, path, anon.status_code)
            as_ingest = await c.request(method, url, headers=auth(ingest))
            if path == "/api/v1/events/ingest":
                assert as_ingest.status_code != 403
            else:
                assert as_ingest.status_code == 403, (method, path, as_ingest.status_code)
            if method != "GET":
                as_read = await c.request(method, url, headers=auth(read))
                assert as_read.status_code == 403, (method, path, as_read.status_code)
