"""Exporter API models: one config model per kind, secrets masked on the way out."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.exporters.channels import check_template

Kind = Literal["webhook", "mqtt", "kafka", "email", "slack", "teams", "telegram"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
MASK = "***"
SECRET_KEYS = frozenset({"secret", "password", "bot_token"})
# Header values under these names are credentials: masked like secrets.
_SENSITIVE_HEADER = re.compile(r"(?i)(auth|token|secret|key|cookie|password|signature)")
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


def mask_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as shown to clients: passwords, secrets and credential-like header values replaced."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in SECRET_KEYS and value is not None:
            out[key] = MASK
        elif key == "headers" and isinstance(value, dict):
            out[key] = {h: MASK if _SENSITIVE_HEADER.search(h) else v for h, v in value.items()}
        else:
            out[key] = value
    return out


def unmask_config(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A config sent back with masked values keeps the stored secrets for them."""
    out = dict(new)
    for key in SECRET_KEYS:
        if out.get(key) == MASK and key in old:
            out[key] = old[key]
    if isinstance(out.get("headers"), dict) and isinstance(old.get("headers"), dict):
        out["headers"] = {h: old["headers"].get(h, v) if v == MASK else v for h, v in out["headers"].items()}
    return out


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
            "config": mask_config(row.config),
            "event_types": row.event_types,
            "retry": {"max_attempts": row.max_attempts, "backoff_seconds": row.backoff_seconds},
            "enabled": row.enabled,
            "consecutive_failures": row.consecutive_failures,
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


class TestResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None
