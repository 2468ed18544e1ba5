"""The Alerts page's people-on-alerts (assignee, comments, snooze, history) and its Policies and mutes sub-view,
in a real chromium against the real server. The `console` fixture fails a test on any uncaught script error."""

import json
import uuid

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(loop_scope="session")
async def producer(server):
    p = AIOKafkaProducer(bootstrap_servers=server.ctx.settings.kafka_bootstrap_servers)
    await p.start()
    yield p
    await p.stop()


async def test_assign_comment_and_snooze_from_the_detail_show_in_its_history(console, client, producer):
    await client.post("/api/v1/people", json={"global_id": 43, "name": "Margaret"})
    c, page = console, console.page
    await c.login()
    await page.locator(".live").filter(has_text="live").wait_for()
    title = f"tailgating-{uuid.uuid4().hex[:6]}"
    await producer.send_and_wait("person_reid_alerts", json.dumps(
        {"global_id": 43, "kind": "tailgating", "severity": "warning", "message": title}).encode())
    item = page.locator("li.alert", has_text=title)
    await item.wait_for(timeout=15_000)
    alert = (await client.get("/api/v1/alerts", params={"source": "reid"})).json()["items"][0]

    await item.locator("button.alert-title").click()
    dlg = page.locator("dialog")
    await dlg.locator("dd[data-field=title]", has_text=title).wait_for()
    await dlg.locator(".history-list li[data-action=created]").wait_for()

    await dlg.get_by_label("Assignee", exact=True).fill("night shift <b>")
    await dlg.get_by_role("button", name="Save assignee").click()
    await dlg.locator("dd[data-field=assignee]", has_text="night shift <b>").wait_for()
    await dlg.locator(".history-list li[data-action=updated]", has_text="night shift <b>").wait_for()

    await dlg.get_by_label("Comment").fill("Checked the camera: a visitor with a badge.")
    await dlg.get_by_role("button", name="Add comment").click()
    await dlg.locator(".history-list li[data-action=commented]", has_text="visitor with a badge").wait_for()

    await dlg.get_by_label("Snooze for").select_option(label="1 h")
    await dlg.get_by_role("button", name="Snooze").click()
    await dlg.locator(".history-list li[data-action=snoozed]").wait_for()

    history = (await client.get(f"/api/v1/alerts/{alert['id']}/history")).json()
    actions = [e["action"] for e in history]
    assert "commented" in actions and "updated" in actions and "snoozed" in actions, actions
    commented = next(e for e in history if e["action"] == "commented")
    assert commented["detail"]["text"] == "Checked the camera: a visitor with a badge."
    after = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert after["assignee"] == "night shift <b>"
    assert after["snoozed_until"] is not None
    assert await page.locator("dialog b").count() == 0  # the assignee is text, never markup
    await c.screenshot("alert-detail")

    # Someone else comments: alert.updated on the WebSocket refreshes the open detail's history.
    r = await client.post(f"/api/v1/alerts/{alert['id']}/comments", json={"text": "Seen from the API"})
    assert r.status_code == 201, r.text
    await dlg.locator(".history-list li[data-action=commented]", has_text="Seen from the API").wait_for(timeout=15_000)
    await page.keyboard.press("Escape")
    await item.locator(".assignee", has_text="night shift").wait_for()


async def test_policies_and_mutes_are_managed_from_the_alerts_page(console, client):
    c, page = console, console.page
    page.on("dialog", lambda d: d.accept())  # the confirm() before a delete
    await c.login()
    nav = await page.locator("#nav a").all_inner_texts()
    assert nav == ["Alerts", "People", "Zones", "Plates", "Assets", "Faces", "Scenarios", "System"]
    await page.get_by_role("link", name="Policies and mutes").click()
    await page.get_by_role("heading", name="Alert policies", level=1).wait_for()
    assert await page.locator("#nav a[aria-current=page]").inner_text() == "Alerts"

    await page.get_by_role("button", name="New policy").click()
    await page.locator("dialog input[name=name]").fill("Night critical reid")
    await page.get_by_label("Match source").fill("reid")
    await page.get_by_label("Match severity").select_option("critical")
    await page.get_by_label("Resolve after quiet (seconds)").fill("600")
    await page.get_by_label("Remind every (seconds)").fill("300")
    await page.get_by_role("button", name="Create policy").click()
    row = page.locator("tr", has_text="Night critical reid")
    await row.wait_for()
    await row.get_by_text("source=reid · severity=critical").wait_for()
    policies = (await client.get("/api/v1/alert-policies")).json()["items"]
    assert [(p["name"], p["match"], p["quiet_resolve_s"], p["remind_every_s"], p["enabled"], p["notify"])
            for p in policies] == [("Night critical reid", {"source": "reid", "severity": "critical"}, 600, 300,
                                    True, [])]

    # A duplicate name is the server's 409: its detail is shown, the dialog stays.
    await page.get_by_role("button", name="New policy").click()
    await page.locator("dialog input[name=name]").fill("Night critical reid")
    await page.get_by_role("button", name="Create policy").click()
    await page.locator(".toast.error", has_text="already exists").wait_for()
    await page.keyboard.press("Escape")

    await row.get_by_role("button", name="Disable").click()
    await row.get_by_role("button", name="Enable").wait_for()
    assert (await client.get(f"/api/v1/alert-policies/{policies[0]['id']}")).json()["enabled"] is False

    await page.get_by_role("button", name="New mute").click()
    await page.get_by_label("Match subject (glob)").fill("person:4*")
    await page.get_by_role("button", name="Create mute").click()
    mute_row = page.locator("tr", has_text="subject=person:4*")
    await mute_row.wait_for()
    mutes = (await client.get("/api/v1/alerts/mutes")).json()["items"]
    await c.screenshot("alert-policies")
    assert [m["match"] for m in mutes] == [{"subject": "person:4*"}]

    await mute_row.get_by_role("button", name="Delete").click()
    await mute_row.wait_for(state="detached")
    assert (await client.get("/api/v1/alerts/mutes")).json()["items"] == []
    await row.get_by_role("button", name="Delete").click()
    await row.wait_for(state="detached")
    assert (await client.get("/api/v1/alert-policies")).json()["items"] == []
    await page.get_by_role("link", name="Back to the alert list").click()
    await page.get_by_role("heading", name="Alerts", level=1).wait_for()
