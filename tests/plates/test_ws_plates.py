"""`/ws/plates`: every new event as `plate.event`, narrowed by camera (and plate)."""

import asyncio
import json

import pytest
import websockets

from tests.conftest import ADMIN_KEY, auth
from tests.plates.helpers import event, make_camera


async def recv_json(ws, timeout=10.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_ws_plates_streams_events_filtered_by_camera(server, client):
    north, south = await make_camera(client, "North"), await make_camera(client, "South")
    base = f"{server.ws_url}/ws/plates"
    async with (
        websockets.connect(f"{base}?camera_id={south}", additional_headers=auth(ADMIN_KEY)) as only_south,
        websockets.connect(base, additional_headers=auth(ADMIN_KEY)) as everything,
        websockets.connect(f"{base}?plate=xy-999", additional_headers=auth(ADMIN_KEY)) as one_plate,
    ):
        first = (await client.post("/api/v1/plates/events", json=event(north, plate="AB123C"))).json()
        second = (await client.post("/api/v1/plates/events", json=event(south, plate="XY999"))).json()
        # A repeat is not a new event: nothing is streamed for it.
        await client.post("/api/v1/plates/events", json=event(south, plate="XY999", event_uid="u1"))
        await client.post("/api/v1/plates/events", json=event(south, plate="XY999", event_uid="u1"))
        msg = await recv_json(only_south)
        assert msg["type"] == "plate.event" and msg["data"]["id"] == second["id"]
        assert msg["data"]["camera_id"] == south and msg["ts"]
        assert (await recv_json(only_south))["data"]["event_uid"] == "u1"
        got = [(await recv_json(everything))["data"]["id"] for _ in range(3)]
        assert got[:2] == [first["id"], second["id"]]
        assert (await recv_json(one_plate))["data"]["id"] == second["id"]
        for ws in (only_south, everything):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)


async def test_ws_plates_rejects_bad_filter_and_missing_key(server):
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{server.ws_url}/ws/plates"):
            pass
    with pytest.raises((websockets.InvalidStatus, websockets.ConnectionClosed)):
        async with websockets.connect(
            f"{server.ws_url}/ws/plates?camera_id=nope", additional_headers=auth(ADMIN_KEY)
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)
