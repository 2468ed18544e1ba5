"""Scenario sources (issue 12): rtsp/rtsps/http/https through the SSRF guard, files only under the media
root (symlinks and .. resolved), anything else 422 naming `source`; the runner checks again."""

import os
import uuid
from pathlib import Path

import pytest

from vigil.core.ssrf import AllowList
from vigil.scenarios.detect import SourceError
from vigil.scenarios.schemas import Job
from vigil.scenarios.sources import SourcePolicy, SourceRefused, vet_source

API = "/api/v1/scenarios"


async def test_sources_refused_at_create_name_the_field(client, server, tmp_path):
    media = server.ctx.settings.media_dir
    media.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "secret.avi"
    outside.write_bytes(b"x")
    link = media / f"escape-{uuid.uuid4().hex[:6]}.avi"
    os.symlink(outside, link)
    refused = [
        "/etc/passwd", "file:///etc/passwd", str(outside), "../../../../etc/passwd", str(media / ".." / "x.avi"),
        str(link),  # a symlink under the root that points out of it
        "file://otherhost/share/a.avi",
        "rtsp://127.0.0.1:554/cam", "http://169.254.169.254/latest/meta-data", "https://10.0.0.8/a.mp4",
        "rtsps://[::1]/x", "http://no-such-host.invalid/a.mp4",
        "rtmp://93.184.216.34/live", "udp://93.184.216.34:1234", "srt://93.184.216.34:9000", "tcp://93.184.216.34:1",
        "gopher://93.184.216.34/x",
    ]
    for source in refused:
        r = await client.post(API, json={"source": source})
        assert r.status_code == 422, (source, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert any(e["loc"][-1] == "source" for e in r.json()["errors"]), (source, r.json())
    assert (await client.get(API)).json()["total"] == 0
    for source in ("clip.avi", str(media / "cams" / "a.avi"), f"file://{media}/b.avi",
                   "rtsp://user:pw@93.184.216.34:554/s", "https://93.184.216.34/v.mp4"):
        r = await client.post(API, json={"source": source})
        assert r.status_code == 201, (source, r.text)


async def test_policy_resolves_paths_and_honours_the_allow_list(tmp_path):
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    policy = SourcePolicy(root, AllowList.parse("10.20.0.0/16"))
    real_root = Path(os.path.realpath(root))  # noqa: ASYNC240 - test setup, a single realpath
    assert await vet_source("sub/a.avi", policy) == str(real_root / "sub" / "a.avi")
    # A name FFmpeg would read as one of its protocols becomes a plain absolute path under the root.
    assert await vet_source("concat:/etc/passwd|x.avi", policy) == str(real_root / "concat:") + "/etc/passwd|x.avi"
    assert await vet_source("rtsp://10.20.1.2/cam", policy) == "rtsp://10.20.1.2/cam"
    for bad in ("sub/../../x.avi", "/tmp/x.avi", "rtsp://10.21.0.1/cam"):
        with pytest.raises(SourceRefused):
            await vet_source(bad, policy)


async def test_the_runner_checks_the_source_again_before_opening(base_settings, tmp_path):
    from vigil.scenarios.runner import ScenarioRunner

    runner = ScenarioRunner(base_settings.model_copy(update={"media_root": tmp_path / "media"}), name="sec")
    try:
        for source in ("/etc/passwd", "rtsp://127.0.0.1/cam"):
            job = Job(scenario_id=uuid.uuid4(), run_id=uuid.uuid4(), source=source, attempt=1)
            with pytest.raises(SourceError, match="refused"):
                await runner._execute(job)
    finally:
        await runner.engine.dispose()
