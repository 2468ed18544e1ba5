"""The production stack: no Docker engine here, so check the compose file's wiring by reading it."""

from pathlib import Path
from urllib.parse import urlparse

import yaml

from vigil.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_needed_service_is_declared():
    services = load()["services"]
    assert {"app", "runner", "postgres", "redis", "kafka", "redpanda", "qdrant", "minio", "prometheus"} <= set(services)
    assert "pgvector" in services["postgres"]["image"]
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka_env


def test_app_is_wired_to_each_dependency_by_env():
    services = load()["services"]
    env = services["app"]["environment"]
    hosts = {
        "DATABASE_URL": "postgres", "REDIS_URL": "redis", "KAFKA_BOOTSTRAP_SERVERS": "kafka",
        "REDPANDA_BROKERS": "redpanda", "QDRANT_URL": "qdrant",
    }
    for var, service in hosts.items():
        value = env[var]
        host = urlparse(value if "://" in value else f"tcp://{value}").hostname
        assert host == service, (var, value)
        assert service in services
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    # Every variable handed to the app is one Settings actually reads.
    known = set()
    for field in Settings.model_fields.values():
        known |= {c for c in field.validation_alias.choices if c.isupper()}
    assert set(env) <= known, set(env) - known
    assert services["runner"]["environment"] == env
    assert "build" in services["app"] and (ROOT / services["app"]["build"]["dockerfile"]).exists()


def test_env_example_documents_every_setting():
    documented = {line.split("=", 1)[0].lstrip("# ").strip()
                  for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    for name, field in Settings.model_fields.items():
        env_name = next(c for c in field.validation_alias.choices if c.isupper())
        assert env_name in documented, f"{env_name} ({name}) is missing from .env.example"
