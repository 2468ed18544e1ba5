"""The video-analytics orchestrator's flow: create, dispatch, run, predictions; and a source-less scenario
run on the runner's own `--source`, as the seed's workers were started."""

from __future__ import annotations

import pytest

from tests.scenarios.helpers import RunnerProcess, make_video, wait_for

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def workdir(base_settings, tmp_path_factory):
    """Under the media root: file sources elsewhere are refused (issue 12)."""
    path = base_settings.media_dir / tmp_path_factory.mktemp("compat-runner").name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def video(workdir):
    return make_video(workdir / "default.avi", frames=5)


@pytest.fixture(scope="module")
def runner(base_settings, workdir, video):
    """One runner in `runners_group`, started with a default source on its command line."""
    proc = RunnerProcess("compat", base_settings, workdir, "--source", str(video))
    try:
        proc.wait_assigned()
        yield proc
    finally:
        proc.stop()


async def status(client, sid):
    return (await client.get(f"/scenario/{sid}/")).json()


async def run_to_active(client, sid):
    r = await client.post(f"/scenario/{sid}/", json={"status": "init_startup_processing"})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "updated", "scenario_id": sid}
    await wait_for(lambda: status(client, sid), lambda s: s["status"] == "active")
    return await wait_for(lambda: client.get(f"/api/v1/scenarios/{sid}"),
                          lambda r: (r.json().get("latest_run") or {}).get("status") == "completed")


async def test_whole_flow_with_a_source(client, runner, workdir):
    video = make_video(workdir / "given.avi", frames=4)
    r = await client.post("/scenario/", json={"status": "init_startup", "source": str(video)})
    assert r.status_code == 201, r.text
    sid = r.json()["scenario_id"]
    assert await status(client, sid) == {"id": sid, "status": "init_startup"}
    r = await client.post(f"/scenario/{sid}/", json={"status": "active"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, "the machine forbids skipping a state"
    done = (await run_to_active(client, sid)).json()
    assert done["latest_run"]["frames_read"] == 4
    preds = (await client.get(f"/prediction/{sid}/")).json()
    assert preds["scenario_id"] == sid and preds["predictions"]
    frame, detections = next(iter(preds["predictions"].items()))
    assert int(frame) >= 0 and set(detections[0]) == {"ts", "class", "confidence", "bbox"}
    r = await client.post(f"/scenario/{sid}/", json={"status": "in_shutdown_processing"})
    assert r.status_code == 200
    assert (await status(client, sid))["status"] == "inactive"


async def test_source_less_scenario_runs_on_the_runners_default(client, runner, video):
    r = await client.post("/scenario/", json={"status": "init_startup"})
    assert r.status_code == 201, r.text
    sid = r.json()["scenario_id"]
    assert (await client.get(f"/api/v1/scenarios/{sid}")).json()["source"] is None
    done = (await run_to_active(client, sid)).json()
    assert done["latest_run"]["frames_read"] == 5, "the runner's own video, five frames"
    assert (await client.get(f"/prediction/{sid}/")).json()["predictions"]


async def test_bad_input_and_unknown_ids(client):
    assert (await client.post("/scenario/", json={"status": "active"})).status_code == 422
    r = await client.post("/scenario/", json={"source": "  "})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "source"]
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await client.get(f"/scenario/{missing}/")).status_code == 404
    assert (await client.post(f"/scenario/{missing}/", json={"status": "failed"})).status_code == 404
    assert (await client.get(f"/prediction/{missing}/")).status_code == 404
