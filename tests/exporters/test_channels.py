"""Notification channels against real servers: aiosmtpd on loopback (plain, STARTTLS with auth, implicit TLS,
with a certificate made here), and a local HTTP receiver for the Slack, Teams, Telegram and webhook shapes."""

import asyncio
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import ipaddress
import ssl
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.exporters.conftest import Receiver, wait_for
from vigil.alerts import service as alerts
from vigil.core.db import session_scope
from vigil.core.devstack import free_port

URL = "/api/v1/exporters"
TOKEN = "123456:AAHsample-token_abcdefghijklmnop"


class Inbox:
    """An aiosmtpd handler keeping what arrives, whether the session was encrypted, and who logged in."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.original_content, policy=email.policy.default),
                # session.ssl is set after STARTTLS only; an implicit-TLS transport carries its ssl_object.
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "login": session.auth_data.login.decode() if session.authenticated else None,
            }
        )
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"vigil" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, auth_data=auth_data if ok else None)


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> dict:
    """A self-signed certificate for 127.0.0.1, made now: the server's chain and the PEM a client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil test smtp")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-cert")
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return {"server": server, "pem": pem.decode()}


@pytest.fixture
def smtp():
    """Start an aiosmtpd server on 127.0.0.1 with the given options; yields (inbox, port)."""
    started: list[Controller] = []

    def start(**kw) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for controller in started:
        controller.stop()


async def make(client, kind: str, config: dict, name: str | None = None, event_types=()) -> dict:
    r = await client.post(
        URL, json={"name": name or kind, "kind": kind, "config": config, "event_types": list(event_types)}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_email_plain_via_a_policy_and_the_test_endpoint(server, client, smtp):
    inbox, port = smtp()
    exp = await make(
        client,
        "email",
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "vigil@example.org",
            "to": ["ops@example.org", "b@example.org"],
            "subject_template": "Vigil: {{ alert.title }} [{{ alert.severity }}]",
            "body_template": "{{ alert.title }}\n"
            "source={{ alert.source }} reason={{ reason }} policy={{ policy }}",
        },
    )
    assert exp["config"]["from"] == "vigil@example.org" and exp["event_types"] == []
    test = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert test["ok"] is True, test
    [sample] = inbox.messages
    assert sample["message"]["Subject"].startswith("Vigil: Sample alert")
    await client.post(
        "/api/v1/alert-policies",
        json={"name": "mail ops", "match": {"source": "test"}, "notify": [exp["id"]]},
    )
    async with session_scope(server.ctx.sessionmaker) as session:
        alert, _ = await alerts.raise_alert(
            session,
            source="test",
            kind="k",
            severity="critical",
            title="Door forced at gate 3",
            subject="gate-3",
        )
    await wait_for(lambda: len(inbox.messages) == 2)
    got = inbox.messages[1]
    message = got["message"]
    assert got["mail_from"] == "vigil@example.org" and got["rcpt_tos"] == ["ops@example.org", "b@example.org"]
    assert message["From"] == "vigil@example.org" and message["To"] == "ops@example.org, b@example.org"
    assert message["Subject"] == "Vigil: Door forced at gate 3 [critical]"
    assert message["X-Vigil-Event"] == "alert.notification" and message["Message-ID"]
    body = message.get_content().replace("\r\n", "\n")  # SMTP line endings
    assert body.startswith("Door forced at gate 3\n") and "source=test reason=created policy=mail ops" in body
    assert got["tls"] is False
    deliveries: list[dict] = []

    async def recorded() -> bool:  # the worker records the send after the SMTP server has the message
        nonlocal deliveries
        deliveries = (await client.get(f"{URL}/{exp['id']}/deliveries")).json()["items"]
        return [d["status"] for d in deliveries] == ["delivered"]

    await wait_for(recorded)
    assert deliveries[0]["payload"]["data"]["alert"]["id"] == str(alert.id)


async def test_email_starttls_with_login(client, smtp, cert):
    inbox, port = smtp(
        tls_context=cert["server"], require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    config = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": True,
        "username": "vigil",
        "password": "s3cret",
        "from": "vigil@example.org",
        "to": ["ops@example.org"],
    }
    untrusted = await make(client, "email", config, name="untrusted")
    test = (await client.post(f"{URL}/{untrusted['id']}/test")).json()
    assert test["ok"] is False and "certificate" in test["error"].lower(), test  # a CA nobody trusts: refused
    exp = await make(client, "email", config | {"ca_cert": cert["pem"]})
    assert exp["config"]["password"] == "***"
    test = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert test["ok"] is True, test
    [got] = inbox.messages
    assert got["tls"] is True and got["login"] == "vigil"
    assert got["message"]["Subject"].startswith("[Vigil WARNING] Sample alert")  # the default subject


async def test_email_implicit_tls(client, smtp, cert):
    inbox, port = smtp(ssl_context=cert["server"])
    exp = await make(
        client,
        "email",
        {
            "host": "127.0.0.1",
            "port": port,
            "tls": True,
            "ca_cert": cert["pem"],
            "from": "vigil@example.org",
            "to": ["ops@example.org"],
        },
    )
    test = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert test["ok"] is True, test
    assert inbox.messages[0]["tls"] is True
    r = await client.post(
        URL,
        json={
            "name": "both",
            "kind": "email",
            "config": {"host": "127.0.0.1", "tls": True, "starttls": True, "from": "a@b.c", "to": ["d@e.f"]},
        },
    )
    assert r.status_code == 422
    r = await client.post(
        URL,
        json={
            "name": "addr",
            "kind": "email",
            "config": {"host": "127.0.0.1", "from": "not an address", "to": ["d@e.f"]},
        },
    )
    assert r.status_code == 422


@pytest_asyncio.fixture(loop_scope="session")
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_slack_teams_and_templated_webhook_shapes(client, receiver):
    slack = await make(client, "slack", {"url": receiver.url + "/slack"})
    teams = await make(client, "teams", {"url": receiver.url + "/teams"})
    card = await make(
        client,
        "teams",
        {
            "url": receiver.url + "/card",
            "format": "messagecard",
            "template": "{{ alert.title }} in {{ alert.data.zone_id }}",
        },
        name="card",
    )
    hook = await make(
        client,
        "webhook",
        {
            "url": receiver.url + "/tpl",
            "secret": "k",
            "template": '{"title": {{ alert.title|tojson }}, "sev": "{{ alert.severity }}"}',
        },
    )
    for exp in (slack, teams, card, hook):
        test = (await client.post(f"{URL}/{exp['id']}/test")).json()
        assert test["ok"] is True, (exp["kind"], test)
    bodies = {r["path"].removeprefix("/hook"): r for r in receiver.received}
    text = bodies["/slack"]["body"]
    assert set(text) == {"text"} and text["text"].startswith("[WARNING] Sample alert: forklift 7 entered")
    adaptive = bodies["/teams"]["body"]
    assert adaptive["type"] == "message" and len(adaptive["attachments"]) == 1
    attachment = adaptive["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert content["type"] == "AdaptiveCard" and content["version"] and content["$schema"].startswith("http")
    assert all(block["type"] == "TextBlock" and block["text"] for block in content["body"])
    legacy = bodies["/card"]["body"]
    assert legacy["@type"] == "MessageCard" and legacy["@context"] == "https://schema.org/extensions"
    assert legacy["text"] == "Sample alert: forklift 7 entered Loading bay in ZONE_001" and legacy["summary"]
    templated = bodies["/tpl"]
    assert templated["body"] == {"title": "Sample alert: forklift 7 entered Loading bay", "sev": "warning"}
    assert templated["headers"]["content-type"] == "application/json"
    sent = b'{"title": "Sample alert: forklift 7 entered Loading bay", "sev": "warning"}'  # the rendered body
    assert (
        templated["headers"]["x-vigil-signature"]
        == "sha256=" + hmac.new(b"k", sent, hashlib.sha256).hexdigest()
    )


async def test_telegram_bot_api_shape(server, client):
    base = urlsplit(server.ctx.settings.telegram_api_base)
    bot_api = Receiver(port=base.port)
    await bot_api.start()
    try:
        exp = await make(
            client, "telegram", {"bot_token": TOKEN, "chat_id": -1001234, "template": "{{ alert.title }}!"}
        )
        assert exp["config"]["bot_token"] == "***" and exp["config"]["chat_id"] == "-1001234"
        test = (await client.post(f"{URL}/{exp['id']}/test")).json()
        assert test["ok"] is True, test
        [got] = bot_api.received
        assert got["path"] == f"{base.path}/bot{TOKEN}/sendMessage"
        assert got["body"] == {"chat_id": "-1001234", "text": "Sample alert: forklift 7 entered Loading bay!"}
        # A PATCH that sends the masked token back keeps the stored one.
        r = await client.patch(
            f"{URL}/{exp['id']}", json={"config": exp["config"] | {"template": "{{ alert.kind }}"}}
        )
        assert r.status_code == 200, r.text
        assert (await client.post(f"{URL}/{exp['id']}/test")).json()["ok"] is True
        assert bot_api.received[1]["path"].endswith(f"/bot{TOKEN}/sendMessage")
        assert bot_api.received[1]["body"]["text"] == "geofence_enter"
    finally:
        await bot_api.stop()
    for bad in ({"bot_token": "nope", "chat_id": "1"}, {"bot_token": TOKEN, "chat_id": "x y"}):
        assert (
            await client.post(URL, json={"name": "bad", "kind": "telegram", "config": bad})
        ).status_code == 422


async def test_templates_are_checked_and_sandboxed(client, receiver):
    r = await client.post(
        URL, json={"name": "broken", "kind": "slack", "config": {"url": receiver.url, "template": "{% if %}"}}
    )
    assert r.status_code == 422 and "template" in r.text
    exp = await make(client, "slack", {"url": receiver.url, "template": "{{ ''.__class__.__mro__ }}"})
    test = (await client.post(f"{URL}/{exp['id']}/test")).json()
    assert test["ok"] is False and "SecurityError" in test["error"]
    assert receiver.received == []
    await asyncio.sleep(0)
