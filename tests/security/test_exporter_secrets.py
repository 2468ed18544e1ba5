"""Stored exporter secrets never move to a new target (issue 12): a masked value sent back is 'keep' only
for the same target, else 422 naming the field; secrets inside webhook URLs are masked like the others."""

import uuid

from sqlalchemy import select

URL = "/api/v1/exporters"


async def stored_config(server, exporter_id: str) -> dict:
    from vigil.exporters.models import Exporter

    async with server.ctx.sessionmaker() as session:
        return (await session.scalar(select(Exporter).where(Exporter.id == uuid.UUID(exporter_id)))).config


async def test_masked_header_is_not_sent_to_a_new_host(server, client, receiver_factory):
    """The reported attack: PATCH the URL elsewhere, send back the masked config, the real header follows."""
    home, attacker = receiver_factory(), receiver_factory()
    await home.start()
    await attacker.start()
    created = await client.post(URL, json={
        "name": "hook", "kind": "webhook", "event_types": ["plate.event"],
        "config": {"url": home.url, "secret": "whsec-1", "headers": {"Authorization": "Bearer real-token"}},
    })
    assert created.status_code == 201, created.text
    exp = created.json()
    assert exp["config"]["headers"] == {"Authorization": "***"} and exp["config"]["secret"] == "***"

    moved = await client.patch(f"{URL}/{exp['id']}", json={"config": exp["config"] | {"url": attacker.url}})
    assert moved.status_code == 422, moved.text
    problem = moved.json()
    assert {tuple(e["loc"][1:]) for e in problem["errors"]} == {
        ("config", "headers", "Authorization"), ("config", "secret")}
    assert "config.headers.Authorization" in problem["detail"] and "config.secret" in problem["detail"]
    assert (await stored_config(server, exp["id"]))["url"] == home.url, "nothing half-written"
    await client.post(f"{URL}/{exp['id']}/test")
    assert attacker.received == []
    assert home.received and home.received[0]["headers"]["authorization"] == "Bearer real-token"

    # Moving it with the secrets dropped (left out) is fine; nothing stored goes along.
    dropped = await client.patch(f"{URL}/{exp['id']}", json={"config": {"url": attacker.url}})
    assert dropped.status_code == 200, dropped.text
    assert await stored_config(server, exp["id"]) == {"url": attacker.url}
    assert (await client.post(f"{URL}/{exp['id']}/test")).json()["ok"] is True
    [got] = attacker.received
    assert "authorization" not in got["headers"] and "x-vigil-signature" not in got["headers"]

    # Moving it with new secrets is fine too.
    fresh = await client.patch(f"{URL}/{exp['id']}", json={"config": {
        "url": home.url, "headers": {"Authorization": "Bearer new"}}})
    assert fresh.status_code == 200
    assert (await stored_config(server, exp["id"]))["headers"] == {"Authorization": "Bearer new"}


async def test_a_mask_with_nothing_stored_or_on_create_is_refused(client, receiver_factory):
    hook = receiver_factory()
    await hook.start()
    masked = await client.post(URL, json={"name": "m", "kind": "webhook", "event_types": ["plate.event"],
                                          "config": {"url": hook.url, "secret": "***"}})
    assert masked.status_code == 422 and masked.json()["errors"][0]["loc"] == ["body", "config", "secret"]
    exp = (await client.post(URL, json={"name": "m", "kind": "webhook", "event_types": ["plate.event"],
                                        "config": {"url": hook.url}})).json()
    again = await client.patch(f"{URL}/{exp['id']}", json={"config": {"url": hook.url, "secret": "***"}})
    assert again.status_code == 422, "no stored secret to keep"


async def test_secrets_in_webhook_urls_are_masked_and_follow_the_same_rule(server, client, receiver_factory):
    hook, other = receiver_factory(), receiver_factory()
    await hook.start()
    await other.start()
    url = f"http://ops:pa55@127.0.0.1:{hook.port}/hook?token=t0k3n&team=ops"
    exp = (await client.post(URL, json={"name": "u", "kind": "webhook", "event_types": ["plate.event"],
                                        "config": {"url": url}})).json()
    shown = exp["config"]["url"]
    assert "pa55" not in shown and "t0k3n" not in shown
    assert shown == f"http://ops:***@127.0.0.1:{hook.port}/hook?token=***&team=ops"
    listed = await client.get(URL)
    assert "pa55" not in listed.text and "t0k3n" not in listed.text

    # The masked URL sent back unchanged keeps both secrets.
    same = await client.patch(f"{URL}/{exp['id']}", json={"config": {"url": shown}, "name": "u2"})
    assert same.status_code == 200, same.text
    assert (await stored_config(server, exp["id"]))["url"] == url
    assert (await client.post(f"{URL}/{exp['id']}/test")).json()["ok"] is True
    assert hook.received[-1]["headers"]["authorization"].startswith("Basic ")

    # The masked URL pointed elsewhere (another port, or another path on the same host) is refused.
    for elsewhere in (shown.replace(str(hook.port), str(other.port)), shown.replace("/hook", "/other")):
        moved = await client.patch(f"{URL}/{exp['id']}", json={"config": {"url": elsewhere}})
        assert moved.status_code == 422, (elsewhere, moved.text)
        assert moved.json()["errors"][0]["loc"] == ["body", "config", "url"]
    assert (await stored_config(server, exp["id"]))["url"] == url
    assert other.received == []


async def test_mqtt_password_and_kafka_sasl_password_stay_with_their_target(server, client, stack):
    mqtt = (await client.post(URL, json={
        "name": "mq", "kind": "mqtt", "event_types": ["plate.event"],
        "config": {"host": "127.0.0.1", "port": 1883, "topic": "t", "username": "u", "password": "mq-pass"},
    })).json()
    assert mqtt["config"]["password"] == "***"
    for change, ok in (({"port": 1884}, False), ({"host": "127.0.0.2"}, False), ({"topic": "t2"}, True)):
        r = await client.patch(f"{URL}/{mqtt['id']}", json={"config": mqtt["config"] | change})
        if ok:
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 422, (change, r.text)
            assert r.json()["errors"][0]["loc"] == ["body", "config", "password"]
    assert (await stored_config(server, mqtt["id"]))["password"] == "mq-pass"

    bootstrap = stack.settings.kafka_bootstrap_servers
    kafka = await client.post(URL, json={
        "name": "kf", "kind": "kafka", "event_types": ["plate.event"],
        "config": {"topic": "export.sasl", "bootstrap_servers": bootstrap, "security_protocol": "SASL_PLAINTEXT",
                   "sasl_mechanism": "PLAIN", "sasl_username": "svc", "sasl_password": "kafka-pass"},
    })
    assert kafka.status_code == 201, kafka.text
    kf = kafka.json()
    assert kf["config"]["sasl_password"] == "***" and "kafka-pass" not in kafka.text
    host, _, port = bootstrap.rpartition(":")
    moved = await client.patch(f"{URL}/{kf['id']}", json={
        "config": kf["config"] | {"bootstrap_servers": f"{host}:{int(port) + 1}"}})
    assert moved.status_code == 422 and moved.json()["errors"][0]["loc"] == ["body", "config", "sasl_password"]
    kept = await client.patch(f"{URL}/{kf['id']}", json={"config": kf["config"] | {"topic": "export.sasl2"}})
    assert kept.status_code == 200, kept.text
    assert (await stored_config(server, kf["id"]))["sasl_password"] == "kafka-pass"


def test_secret_rules_are_a_table_every_kind_has_a_row_in():
    from vigil.exporters.schemas import CONFIG_MODELS, SECRET_RULES

    assert set(CONFIG_MODELS) <= set(SECRET_RULES)
    for kind, rule in SECRET_RULES.items():
        fields = set(CONFIG_MODELS[kind].model_fields)
        assert set(rule.target) | set(rule.secrets) | set(rule.urls) <= fields, kind


def test_a_kind_whose_url_is_the_secret_keeps_it_only_when_sent_back_masked(monkeypatch):
    """A row as H7's slack/teams kinds add it: the masked URL alone means 'keep'; a new URL is a new secret."""
    from vigil.exporters import schemas

    monkeypatch.setitem(schemas.SECRET_RULES, "slack", schemas.SecretRule(target=("url",), secrets=("url",)))
    stored = {"url": "https://hooks.slack.com/services/T/B/XYZ", "template": "a"}
    shown = schemas.mask_config(stored, "slack")
    assert shown == {"url": "***", "template": "a"}
    assert schemas.merge_secrets("slack", {**shown, "template": "b"}, "slack", stored) == (
        {**stored, "template": "b"}, [])
    assert schemas.merge_secrets("slack", shown, "webhook", stored)[1] == [["url"]], "kind changed"
    new = {"url": "https://hooks.slack.com/services/T/B/NEW"}
    assert schemas.merge_secrets("slack", new, "slack", stored) == (new, [])
