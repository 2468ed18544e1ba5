"""Notification channels for people: email (SMTP), Slack, Teams and Telegram, and templated webhooks.

They are exporter kinds like the others: the same delivery queue, retries, delivery log and SSRF check
(`Senders.send` guards, then calls the functions here). What is sent is rendered from the event with a
Jinja2 template in a sandbox (no attribute tricks, no imports, bounded ranges); a template that does not
parse is refused when the exporter is saved.
"""

from __future__ import annotations

import json
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from typing import Any

import aiosmtplib
import httpx
from jinja2 import TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from vigil.core.db import utcnow
from vigil.exporters.outgoing import Outgoing, Target

CHANNEL_KINDS = ("email", "slack", "teams", "telegram")
MAX_RENDERED = 64_000  # characters; chat APIs refuse far less (Telegram 4096), email bodies stay sane
TELEGRAM_MAX = 4096

DEFAULT_TEXT = (
    "{% if alert %}[{{ alert.severity|upper }}] {{ alert.title }}"
    "{% if reason and reason != 'created' %} ({{ reason }}{% if step %} {{ step }}{% endif %}){% endif %}\n"
    "{{ alert.source }}/{{ alert.kind }}{% if alert.subject %} {{ alert.subject }}{% endif %}"
    " - {{ alert.status }}, seen {{ alert.count }}x, last {{ alert.last_seen_at }}"
    "{% if policy %}\npolicy: {{ policy }}{% endif %}\nalert id: {{ alert.id }}"
    "{% else %}{{ type }}: {{ data|tojson }}{% endif %}"
)
DEFAULT_SUBJECT = (
    "{% if alert %}[Vigil {{ alert.severity|upper }}] {{ alert.title }}"
    "{% else %}[Vigil] {{ type }}{% endif %}"
)
TEAMS_COLORS = {"critical": "D13438", "warning": "FFB900", "info": "0078D4"}


# --- templates -------------------------------------------------------------------------------


_ENV = SandboxedEnvironment(autoescape=False, undefined=Undefined)


@lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


def check_template(source: str | None) -> str | None:
    """Raise ValueError (a 422 at save time) when a template does not parse."""
    if source is None:
        return None
    try:
        _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template does not parse: {exc.message} (line {exc.lineno})") from None
    return source


def context(payload: dict[str, Any]) -> dict[str, Any]:
    """What a template sees: the event, and for alert events the alert (and the policy that notified)."""
    kind = str(payload.get("type", ""))
    raw = payload.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    alert, policy, reason, step = None, None, None, None
    if kind == "alert.notification":
        alert = data.get("alert")
        policy = (data.get("policy") or {}).get("name")
        reason, step = data.get("reason"), data.get("step")
    elif kind.startswith("alert."):
        alert, reason = data, kind.removeprefix("alert.")
    return {
        "event": payload,
        "type": kind,
        "ts": payload.get("ts"),
        "data": data,
        "alert": alert,
        "policy": policy,
        "reason": reason,
        "step": step,
    }


def render(source: str | None, payload: dict[str, Any], *, default: str = DEFAULT_TEXT) -> str:
    """Render a template (or the default) against an event; sandboxed, output bounded."""
    text = _compiled(source if source is not None else default).render(context(payload))
    return text[:MAX_RENDERED]


def sample_alert_event() -> dict[str, Any]:
    """An `alert.notification` for `POST /exporters/{id}/test`: what a policy would send."""
    now = utcnow().isoformat()
    alert = {
        "id": str(uuid.UUID(int=0)),
        "source": "geofence",
        "kind": "geofence_enter",
        "subject": "sample",
        "severity": "warning",
        "status": "open",
        "title": "Sample alert: forklift 7 entered Loading bay",
        "data": {"zone_id": "ZONE_001", "camera_id": None, "site_id": None, "sample": True},
        "count": 1,
        "created_at": now,
        "last_seen_at": now,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "resolved_by": None,
        "assignee": None,
        "suppressed": False,
        "muted": False,
        "snoozed_until": None,
    }
    return {
        "type": "alert.notification",
        "ts": now,
        "data": {"alert": alert, "policy": {"id": None, "name": "sample policy"}, "reason": "test"},
    }


# --- senders ---------------------------------------------------------------------------------


def webhook_body(config: dict[str, Any], payload: dict[str, Any], default: bytes) -> tuple[bytes, str]:
    """A webhook's body and content type: the event JSON, or its template rendered (JSON if it parses)."""
    if not config.get("template"):
        return default, "application/json"
    text = render(config["template"], payload)
    try:
        json.loads(text)
    except ValueError:
        return text.encode(), "text/plain; charset=utf-8"
    return text.encode(), "application/json"


def chat_body(kind: str, config: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON each chat service documents for an incoming message."""
    text = render(config.get("template"), payload)
    if kind == "slack":
        return {"text": text}  # Slack incoming webhook: {"text": ...} (mrkdwn)
    if kind == "telegram":
        return {"chat_id": config["chat_id"], "text": text[:TELEGRAM_MAX]}
    # Teams: an Adaptive Card message (Workflows webhooks), or the legacy connector MessageCard.
    ctx = context(payload)
    alert = ctx["alert"] or {}
    title = render(DEFAULT_SUBJECT, payload)
    if config.get("format") == "messagecard":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title[:200],
            "themeColor": TEAMS_COLORS.get(str(alert.get("severity", "")), "0078D4"),
            "title": title,
            "text": text,
        }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": title,
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": text, "wrap": True},
                    ],
                },
            }
        ],
    }


async def send_chat(
    http: httpx.AsyncClient,
    target: Target,
    items: list[Outgoing],
    results: list[str | None],
    *,
    telegram_api_base: str,
) -> None:
    """Slack / Teams incoming webhooks and Telegram's sendMessage, one POST per item, in order."""
    config = target.config
    if target.kind == "telegram":
        url = f"{telegram_api_base.rstrip('/')}/bot{config['bot_token']}/sendMessage"
    else:
        url = config["url"]
    for item in items:
        body = chat_body(target.kind, config, item.payload)
        response = await http.post(url, json=body, headers={"X-Vigil-Delivery": str(item.delivery_id)})
        if not 200 <= response.status_code < 300:
            detail = ""
            if target.kind == "telegram":
                try:
                    detail = f": {response.json().get('description', '')}"[:300]
                except ValueError:
                    pass
            results.append(f"HTTP {response.status_code} from {target.kind}{detail}")
            return
        results.append(None)


def email_message(config: dict[str, Any], item: Outgoing) -> EmailMessage:
    """The email for one event: From/To, a one-line subject, a text body, ids a receiver can dedupe on."""
    message = EmailMessage()
    subject = render(config.get("subject_template"), item.payload, default=DEFAULT_SUBJECT)
    message["Subject"] = " ".join(subject.split())[:250]
    message["From"] = config["from"]
    message["To"] = ", ".join(config["to"])
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="vigil")
    message["X-Vigil-Delivery"] = str(item.delivery_id)
    message["X-Vigil-Event"] = item.event_type
    message.set_content(render(config.get("body_template"), item.payload))
    return message


def _tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    context_ = ssl.create_default_context()
    if config.get("ca_cert"):
        context_.load_verify_locations(cadata=config["ca_cert"])
    return context_


async def send_email(
    target: Target, items: list[Outgoing], results: list[str | None], *, timeout_s: float
) -> None:
    """One SMTP session for the batch: implicit TLS or STARTTLS as configured, login if given."""
    config = target.config
    use_tls, starttls = bool(config.get("tls")), bool(config.get("starttls"))
    smtp = aiosmtplib.SMTP(
        hostname=config["host"],
        port=config.get("port", 465 if use_tls else 25),
        use_tls=use_tls,
        start_tls=starttls,
        timeout=timeout_s,
        tls_context=_tls_context(config) if (use_tls or starttls) else None,
    )
    async with smtp:
        if config.get("username"):
            await smtp.login(config["username"], config.get("password") or "")
        for item in items:
            errors, _ = await smtp.send_message(email_message(config, item))
            if errors:
                results.append(f"refused recipients: {', '.join(sorted(errors))}"[:1000])
                return
            results.append(None)


__all__ = [
    "CHANNEL_KINDS",
    "chat_body",
    "check_template",
    "context",
    "email_message",
    "render",
    "sample_alert_event",
    "send_chat",
    "send_email",
    "webhook_body",
]
