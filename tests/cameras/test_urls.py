"""Stream URL rules: accepted schemes, password masking, keeping a masked password on update."""

import pytest

from vigil.cameras.urls import keep_masked_password, mask_password, validate_stream_url


@pytest.mark.parametrize(
    "url", ["rtsp://cam.local/stream", "rtsps://u:p@10.0.0.2:8554/x", "http://h/mjpg", "https://[::1]:8443/a"]
)
def test_accepted_urls(url):
    assert validate_stream_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/x",
        "rtsp:///nohost",
        "file:///etc/passwd",
        "rtsp://h:99999/x",
        "rtsp://h/a b",
        "not a url",
        "",
    ],
)
def test_rejected_urls(url):
    with pytest.raises(ValueError):
        validate_stream_url(url)


def test_mask_password():
    assert (
        mask_password("rtsp://admin:s3cr3t@10.0.0.2:554/live?x=1") == "rtsp://admin:***@10.0.0.2:554/live?x=1"
    )
    assert mask_password("rtsp://:s3cr3t@h/x") == "rtsp://:***@h/x"
    assert mask_password("rtsp://admin@h/x") == "rtsp://admin@h/x"
    assert mask_password("rtsp://h/x") == "rtsp://h/x"
    assert "p@ss" not in mask_password("rtsp://u:p@ss@h/x")


def test_keep_masked_password():
    old = "rtsp://admin:s3cr3t@cam/live"
    assert keep_masked_password("rtsp://admin:***@cam/other", old) == "rtsp://admin:s3cr3t@cam/other"
    assert keep_masked_password("rtsp://admin:new@cam/live", old) == "rtsp://admin:new@cam/live"
    with pytest.raises(ValueError):
        keep_masked_password("rtsp://admin:***@elsewhere/live", old)
