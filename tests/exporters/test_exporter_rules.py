"""Pure exporter rules: SSRF classification, masking, subscriptions, signatures."""

import hashlib
import hmac
import ipaddress

import pytest

from vigil.exporters.schemas import MASK, mask_config, merge_secrets
from vigil.exporters.senders import signature
from vigil.exporters.service import subscribes
from vigil.exporters.ssrf import AllowList, TargetRefused, check_target, is_internal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:10.0.0.1",
        "224.0.0.1",
    ],
)
def test_internal_addresses(address):
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address):
    assert not is_internal(ipaddress.ip_address(address))


async def test_check_target_with_allow_list():
    allow = AllowList.parse("127.0.0.1, 10.20.0.0/16 ,broker.internal")
    await check_target("127.0.0.1", 80, allow)
    await check_target("10.20.3.4", 80, allow)
    await check_target("broker.internal", 1883, allow)  # listed by name: not even resolved
    await check_target("8.8.8.8", 443, allow)
    for host in ("10.21.0.1", "169.254.169.254", "[::1]", "192.168.0.10"):
        with pytest.raises(TargetRefused):
            await check_target(host, 80, allow)
    with pytest.raises(TargetRefused):
        await check_target("127.0.0.1", 80, AllowList.parse(""))
    with pytest.raises(TargetRefused, match="resolve"):
        await check_target("no-such-host.invalid", 80, allow)


def test_masking_round_trip():
    config = {"url": "https://h/x", "secret": "s3", "headers": {"Authorization": "Bearer t", "X-Team": "ops"}}
    masked = mask_config(config)
    assert masked == {
        "url": "https://h/x",
        "secret": MASK,
        "headers": {"Authorization": MASK, "X-Team": "ops"},
    }
    assert merge_secrets("webhook", masked, "webhook", config) == (config, [])
    assert merge_secrets("webhook", {**masked, "secret": "new"}, "webhook", config)[0]["secret"] == "new"
    assert mask_config({"host": "h", "password": "p", "username": "u"})["password"] == MASK


def test_subscriptions():
    assert subscribes(["plate.event"], "plate.event")
    assert not subscribes(["plate.event"], "plate.events")
    assert subscribes(["alert."], "alert.updated") and not subscribes(["alert."], "plate.event")
    assert subscribes(["*"], "anything.at_all")


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"a":1}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
