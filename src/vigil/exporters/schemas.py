"""Exporter API models: one config model per kind, secrets masked on the way out."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.exporters.channels import check_template

Kind = Literal["webhook", "mqtt", "kafka", "email", "slack", "teams", "telegram"]
DeliveryStatus = Literal["pending", "delivered", "failed", "held"]
MASK = "***"
# Header values and URL query parameters under these names are credentials: masked like secrets.
_SENSITIVE_HEADER = re.compile(r"(?i)(auth|token|secret|key|cookie|passw|signature|sig$|^code$|session)")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_EVENT_TYPE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?)$")
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("scheme must be http or https")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return value


def _template_field() -> Any:
    return Field(None, min_length=1, max_length=20_000, description="Jinja2 (sandboxed); see README")


class WebhookConfig(Schema):
    url: str = Field(max_length=2000)
    secret: str | None = Field(None, min_length=1, max_length=500)
    headers: dict[str, str] | None = None
    template: str | None = _template_field()

    _url = field_validator("url")(_http_url)
    _template = field_validator("template")(check_template)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header_value in (value or {}).items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _RESERVED_HEADERS or name.lower().startswith("x-vigil-"):
                raise ValueError(f"header {name!r} is set by Vigil")
            if any(ch in header_value for ch in "\r\n\0"):
                raise ValueError(f"header {name!r} has a control character")
        return value


class MqttConfig(Schema):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(1883, ge=1, le=65535)
    topic: str = Field(min_length=1, max_length=500)
    username: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if any(ch in value for ch in "+#\0"):
            raise ValueError("a publish topic cannot contain wildcards (+, #)")
        return value


class KafkaConfig(Schema):
    bootstrap_servers: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="host:port[,host:port]; the app's own broker when unset",
    )
    topic: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = Field(None, min_length=1, max_length=200)
    sasl_password: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _sasl(self) -> KafkaConfig:
        sasl = (self.security_protocol or "").startswith("SASL")
        if sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError("SASL needs sasl_username and sasl_password")
        if not sasl and (self.sasl_username or self.sasl_password or self.sasl_mechanism):
            raise ValueError("sasl_* settings need security_protocol SASL_PLAINTEXT or SASL_SSL")
        if (self.security_protocol or "PLAINTEXT") != "PLAINTEXT" and not self.bootstrap_servers:
            raise ValueError("security settings apply to a foreign broker: set bootstrap_servers")
        return self

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _KAFKA_TOPIC.match(value) or value in (".", ".."):
            raise ValueError("a Kafka topic is 1-249 of letters, digits, '.', '_' and '-'")
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("expected host:port[,host:port...]")
        return value


_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address (name@host)")
    return value


class EmailConfig(Schema):
    """SMTP: implicit TLS (`tls`, port 465) or STARTTLS (`starttls`, port 587), or neither (port 25)."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", serialize_by_alias=True)

    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535, description="465 with tls, else 25")
    starttls: bool = False
    tls: bool = False
    username: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(None, min_length=1, max_length=500)
    from_: str = Field(alias="from", max_length=320)
    to: list[str] = Field(min_length=1, max_length=50)
    subject_template: str | None = Field(None, min_length=1, max_length=2000)
    body_template: str | None = _template_field()
    ca_cert: str | None = Field(None, min_length=1, max_length=20_000,
                                description="PEM of a private CA to trust for TLS (else the system's)")

    _from = field_validator("from_")(_address)
    _templates = field_validator("subject_template", "body_template")(check_template)

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @model_validator(mode="after")
    def _one_tls(self) -> EmailConfig:
        if self.tls and self.starttls:
            raise ValueError("choose tls (implicit, port 465) or starttls, not both")
        if self.port is None:
            self.port = 465 if self.tls else 25
        return self


class SlackConfig(Schema):
    url: str = Field(max_length=2000, description="The incoming-webhook URL")
    template: str | None = _template_field()

    _url = field_validator("url")(_http_url)
    _template = field_validator("template")(check_template)


class TeamsConfig(SlackConfig):
    format: Literal["adaptive", "messagecard"] = Field(
        "adaptive",
        description="Adaptive Card message (Workflows webhooks) or the legacy connector MessageCard",
    )


class TelegramConfig(Schema):
    bot_token: str = Field(pattern=r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$", description="From @BotFather")
    chat_id: str = Field(min_length=1, max_length=100, pattern=r"^(-?[0-9]+|@[A-Za-z0-9_]{5,32})$")
    template: str | None = _template_field()

    _template = field_validator("template")(check_template)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


CONFIG_MODELS: dict[str, type[Schema]] = {
    "webhook": WebhookConfig, "mqtt": MqttConfig, "kafka": KafkaConfig,
    "email": EmailConfig, "slack": SlackConfig, "teams": TeamsConfig, "telegram": TelegramConfig,
}


# --- secrets: which config keys are credentials, and which name the target they are for -----------


@dataclass(frozen=True)
class SecretRule:
    """Per exporter kind: `target` keys say where a message goes; `secrets` keys hold credentials for
    that target; `headers` names a dict whose credential-like entries are secrets; `urls` are keys whose
    URL may carry secrets (userinfo password, token-like query parameters). Kinds add a row, e.g.
    email `SecretRule(target=("host", "port"), secrets=("password",))`, slack/teams (the URL is the
    secret) `SecretRule(target=("url",), secrets=("url",))`, telegram `SecretRule(secrets=("bot_token",))`."""

    target: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    headers: str | None = None
    urls: tuple[str, ...] = ()


SECRET_RULES: dict[str, SecretRule] = {
    "webhook": SecretRule(target=("url",), secrets=("secret",), headers="headers", urls=("url",)),
    "mqtt": SecretRule(target=("host", "port"), secrets=("password",)),
    "kafka": SecretRule(target=("bootstrap_servers",), secrets=("sasl_password",)),
    "email": SecretRule(target=("host", "port"), secrets=("password",)),
    # An incoming-webhook URL is itself the credential: shown masked, kept only while unchanged.
    "slack": SecretRule(target=("url",), secrets=("url",)),
    "teams": SecretRule(target=("url",), secrets=("url",)),
    "telegram": SecretRule(secrets=("bot_token",)),
}
# Masking without a kind: every secret key of every kind, except `url`, which some kinds treat as the
# secret (slack, teams) and others as a target whose URL secrets alone are masked.
_ANY_KIND = SecretRule(
    secrets=tuple(sorted({k for r in SECRET_RULES.values() for k in r.secrets} - {"url"})), headers="headers",
    urls=("url",)
)


def _mask_url(url: str) -> str:
    """`https://u:pw@h/p?token=t&x=1` -> `https://u:***@h/p?token=***&x=1`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SENSITIVE_HEADER.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SENSITIVE_HEADER.search(k) else v) for k, v in pairs], safe="*",
                              quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _url_target(url: str) -> str:
    """The URL with its secrets taken out: what identifies where a message goes."""
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, v) for k, v in pairs if not _SENSITIVE_HEADER.search(k)])
    return urlunsplit((parts.scheme.lower(), (parts.username or "") + "@" + hostport.lower(), parts.path, query, ""))


def mask_config(config: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """The config as shown to clients: secrets, credential-like header values and URL secrets replaced."""
    rule = SECRET_RULES.get(kind or "", _ANY_KIND) if kind else _ANY_KIND
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in rule.secrets and value is not None:
            out[key] = MASK
        elif key == rule.headers and isinstance(value, dict):
            out[key] = {h: MASK if _SENSITIVE_HEADER.search(h) else v for h, v in value.items()}
        elif key in rule.urls and isinstance(value, str):
            out[key] = _mask_url(value)
        else:
            out[key] = value
    return out


def _target_of(rule: SecretRule, config: dict[str, Any], stored: dict[str, Any]) -> tuple[Any, ...]:
    """The values that say where messages go; a target key that is itself a secret (a Slack webhook URL)
    and comes back masked stands for the stored value."""
    out = []
    for key in rule.target:
        value = stored.get(key) if config.get(key) == MASK else config.get(key)
        out.append(_url_target(value) if key in rule.urls and isinstance(value, str) else value)
    return tuple(out)


def _unmask_url(new: str, old: str | None) -> str | None:
    """`new` with each masked part taken from `old`; None if a masked part has no stored value."""
    parts = urlsplit(new)
    stored = urlsplit(old) if old else None
    netloc = parts.netloc
    if parts.password == MASK:
        if stored is None or stored.password is None:
            return None
        netloc = f"{stored.netloc.rpartition('@')[0]}@{netloc.rpartition('@')[2]}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(v == MASK for _, v in pairs):
        old_pairs = dict(parse_qsl(stored.query, keep_blank_values=True)) if stored else {}
        restored = []
        for k, v in pairs:
            if v == MASK:
                if k not in old_pairs:
                    return None
                v = old_pairs[k]
            restored.append((k, v))
        query = urlencode(restored)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _has_masked_url_part(url: str) -> bool:
    parts = urlsplit(url)
    return parts.password == MASK or any(v == MASK for _, v in parse_qsl(parts.query, keep_blank_values=True))


def masked_fields(kind: str, config: dict[str, Any]) -> list[list[str]]:
    """Where a config still holds the mask `***` in a secret position (a create must send real values)."""
    rule = SECRET_RULES.get(kind, SecretRule())
    found = [[k] for k in rule.secrets if config.get(k) == MASK]
    if rule.headers and isinstance(config.get(rule.headers), dict):
        found += [[rule.headers, h] for h, v in config[rule.headers].items() if v == MASK]
    found += [[k] for k in rule.urls if isinstance(config.get(k), str) and _has_masked_url_part(config[k])]
    return found


def merge_secrets(
    kind: str, new: dict[str, Any], old_kind: str, old: dict[str, Any]
) -> tuple[dict[str, Any], list[list[str]]]:
    """Resolve masked values (`***`) a PATCH sent back: each keeps its stored secret only when the target
    (URL, host/port, bootstrap servers) and the kind are unchanged. Returns the config and the paths
    (e.g. ['headers', 'Authorization']) of masked values that cannot be kept: they must be sent again."""
    rule = SECRET_RULES.get(kind, SecretRule())
    same = kind == old_kind and _target_of(rule, new, old) == _target_of(rule, old, old)
    out = dict(new)
    missing: list[list[str]] = []
    for key in rule.secrets:
        if out.get(key) == MASK:
            if same and old.get(key) is not None:
                out[key] = old[key]
            else:
                missing.append([key])
    if rule.headers and isinstance(out.get(rule.headers), dict):
        previous = old.get(rule.headers)
        stored: dict[str, Any] = previous if isinstance(previous, dict) else {}
        headers = {}
        for name, value in out[rule.headers].items():
            if value == MASK:
                if same and name in stored:
                    value = stored[name]
                else:
                    missing.append([rule.headers, name])
            headers[name] = value
        out[rule.headers] = headers
    for key in rule.urls:
        if isinstance(out.get(key), str) and _has_masked_url_part(out[key]):
            restored = _unmask_url(out[key], old.get(key)) if same else None
            if restored is None:
                missing.append([key])
            else:
                out[key] = restored
    return out, missing


def _event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    out: list[str] = []
    for item in value:
        if not _EVENT_TYPE.match(item):
            raise ValueError(
                f"{item!r} is not an event type (e.g. 'plate.event', 'alert.' for all alerts, '*')"
            )
        if item not in out:
            out.append(item)
    return out


class RetryPolicy(Schema):
    max_attempts: int = Field(5, ge=1, le=100)
    backoff_seconds: float = Field(2.0, gt=0, le=3600, description="First retry delay; doubles per attempt")


class RetryUpdate(Schema):
    max_attempts: int | None = Field(None, ge=1, le=100)
    backoff_seconds: float | None = Field(None, gt=0, le=3600)


class ExporterCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    config: dict[str, Any]
    # May be empty for a channel that only alert policies notify (through their `notify`).
    event_types: list[str] = Field(default_factory=list, max_length=50)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    enabled: bool = True

    _types = field_validator("event_types")(_event_types)


class ExporterUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: Kind | None = None
    config: dict[str, Any] | None = None
    event_types: list[str] | None = Field(None, max_length=50)
    retry: RetryUpdate | None = None
    enabled: bool | None = None

    _types = field_validator("event_types")(_event_types)


class ExporterRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: Kind
    config: dict[str, Any]
    event_types: list[str]
    retry: RetryPolicy
    enabled: bool
    consecutive_failures: int
    failing_since: datetime | None = Field(
        None, description="When the current run of failed deliveries began; null while deliveries succeed."
    )
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, row: Any) -> Any:
        if isinstance(row, dict):
            return row
        return {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "config": mask_config(row.config, row.kind),
            "event_types": row.event_types,
            "retry": {"max_attempts": row.max_attempts, "backoff_seconds": row.backoff_seconds},
            "enabled": row.enabled,
            "consecutive_failures": row.consecutive_failures,
            "failing_since": row.failing_since,
            "disabled_reason": row.disabled_reason,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    exporter_id: uuid.UUID
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any]


class ExporterEnabled(ExporterRead):
    """The exporter after `enable`, with what became of the deliveries held while it was disabled."""

    replayed: int = Field(0, description="Held deliveries made pending again (`replay=true`), sent in order.")
    discarded: int = Field(0, description="Held deliveries deleted because `replay` was not asked for.")


class TestResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None
