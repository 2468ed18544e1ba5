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


def test_two_app_replicas_behind_a_proxy_that_upgrades_websockets():
    services = load()["services"]
    assert services["app"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["app"], "only the proxy publishes a port"
    proxy = services["proxy"]
    assert "nginx" in proxy["image"] and "app" in proxy["depends_on"]
    assert proxy["ports"] == ["8000:8000"]
    mount = next(v for v in proxy["volumes"] if v.endswith("/etc/nginx/nginx.conf:ro"))
    conf = (ROOT / mount.split(":")[0]).read_text()
    assert "server app:8000" in conf and "resolver 127.0.0.11" in conf
    ws = conf[conf.index("location /ws/"):]
    assert "proxy_set_header Upgrade $http_upgrade" in ws and "proxy_set_header Connection $connection_upgrade" in ws
    assert "proxy_http_version 1.1" in ws and "proxy_read_timeout" in ws


def test_app_and_runner_use_minio_and_the_bucket_is_made_first():
    services = load()["services"]
    env = services["app"]["environment"]
    assert urlparse(env["S3_ENDPOINT_URL"]).hostname == "minio" and env["S3_BUCKET"]
    assert env["S3_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert env["S3_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    init = services["minio-init"]
    assert "minio/mc" in init["image"] and f"local/{env['S3_BUCKET']}" in init["command"][0]
    for name in ("app", "runner"):
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # More than one instance needs a gallery every instance shares: not Qdrant's local mode.
    assert env["VIGIL_GALLERY_BACKEND"] in ("pgvector", "qdrant") and env["QDRANT_URL"]


def test_prometheus_scrapes_every_app_replica():
    services = load()["services"]
    mount = next(v for v in services["prometheus"]["volumes"] if "prometheus.yml" in v)
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "vigil")
    assert job["metrics_path"] == "/metrics"
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["app"] and sd["port"] == 8000 and sd["type"] == "A"
