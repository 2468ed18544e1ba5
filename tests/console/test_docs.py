"""/docs and /redoc work offline: their HTML names only same-origin assets, and those are served."""

import re

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_reference_only_same_origin_assets_that_are_served(anon, path):
    r = await anon.get(path)
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", r.text) + re.findall(r"""spec-url=["']([^"']+)["']""", r.text)
    assert urls, r.text
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    assets = [u for u in urls if "/static/vendor/" in u]
    assert len(assets) >= (2 if path == "/docs" else 1)
    for url in assets:
        asset = await anon.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100


async def test_swagger_ui_renders_offline_from_this_host(console):
    await console.page.goto(f"{console.base_url}/docs")
    # the spec is big and the machine shared: rendering may take a while
    await console.page.locator(".swagger-ui .info .title").wait_for(timeout=45_000)
    assert "Vigil" in await console.page.locator(".swagger-ui .info .title").inner_text()
    await console.page.goto(f"{console.base_url}/redoc")
    await console.page.locator("h1").first.wait_for(timeout=45_000)
    assert "Vigil" in await console.page.locator("h1").first.inner_text()
    # the console fixture asserts no request went to another host and no script failed


async def test_console_page_needs_no_key_and_sets_a_same_origin_policy(anon):
    r = await anon.get("/console/")
    assert r.status_code == 200
    assert 'name="api_key"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.findall(r"""(?:src|href)=["'](?:https?:)?//""", r.text)
