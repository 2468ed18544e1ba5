"""The one Settings object: every knob Vigil has, read from the environment (and `.env`) once."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

COMPAT_SEEDS = ("reid", "anpr", "assets", "kanta", "scenarios")


def _env(*names: str) -> AliasChoices:
    """Accept the documented env var name and the field's own name (handy in tests)."""
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Configuration. Every field is documented with its default in `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- serving -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", validation_alias=_env("HOST", "host"))
    port: int = Field(8000, ge=0, le=65535, validation_alias=_env("PORT", "port"))
    data_dir: Path = Field(Path(".data"), validation_alias=_env("VIGIL_DATA_DIR", "data_dir"))
    log_level: str = Field("INFO", validation_alias=_env("VIGIL_LOG_LEVEL", "log_level"))
    log_json: bool = Field(False, validation_alias=_env("VIGIL_LOG_JSON", "log_json"))
    instance_id: str | None = Field(None, validation_alias=_env("VIGIL_INSTANCE_ID", "instance_id"))
    workers: int = Field(1, ge=1, le=64, validation_alias=_env("VIGIL_WORKERS", "workers"))

    # --- dependencies: a URL given here replaces the embedded service ----------------------
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL", "database_url"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL", "redis_url"))
    kafka_bootstrap_servers: str | None = Field(
        None, validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers")
    )
    redpanda_brokers: str | None = Field(None, validation_alias=_env("REDPANDA_BROKERS", "redpanda_brokers"))
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL", "qdrant_url"))
    qdrant_path: Path | None = Field(None, validation_alias=_env("VIGIL_QDRANT_PATH", "qdrant_path"))
    db_pool_size: int = Field(20, ge=1, validation_alias=_env("VIGIL_DB_POOL_SIZE", "db_pool_size"))
    db_max_overflow: int = Field(0, ge=0, validation_alias=_env("VIGIL_DB_MAX_OVERFLOW", "db_max_overflow"))
    dependency_timeout_s: float = Field(
        2.0, gt=0, validation_alias=_env("VIGIL_DEPENDENCY_TIMEOUT_S", "dependency_timeout_s")
    )

    # --- blob storage: S3 when S3_BUCKET is set, else the local directory under the data dir ------
    s3_endpoint_url: str | None = Field(None, validation_alias=_env("S3_ENDPOINT_URL", "s3_endpoint_url"))
    s3_bucket: str | None = Field(None, validation_alias=_env("S3_BUCKET", "s3_bucket"))
    s3_access_key_id: str | None = Field(None, validation_alias=_env("S3_ACCESS_KEY_ID", "s3_access_key_id"))
    s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("S3_SECRET_ACCESS_KEY", "s3_secret_access_key")
    )
    s3_region: str = Field("us-east-1", min_length=1, validation_alias=_env("S3_REGION", "s3_region"))
    blob_presign: bool = Field(False, validation_alias=_env("VIGIL_BLOB_PRESIGN", "blob_presign"))
    blob_presign_ttl_s: int = Field(
        300, ge=1, le=7 * 24 * 3600, validation_alias=_env("VIGIL_BLOB_PRESIGN_TTL_S", "blob_presign_ttl_s")
    )

    # --- auth ---------------------------------------------------------------------------
    admin_key: SecretStr | None = Field(None, validation_alias=_env("VIGIL_ADMIN_KEY", "admin_key"))
    key_cache_ttl_s: float = Field(10.0, ge=0, validation_alias=_env("VIGIL_KEY_CACHE_TTL_S", "key_cache_ttl_s"))
    rate_limit_per_key: int | None = Field(
        None, ge=1, validation_alias=_env("VIGIL_RATE_LIMIT_PER_KEY", "rate_limit_per_key")
    )
    rate_limit_ingest: int | None = Field(
        None, ge=1, validation_alias=_env("VIGIL_RATE_LIMIT_INGEST", "rate_limit_ingest")
    )

    # --- audit log ------------------------------------------------------------------------
    audit_retention_days: float = Field(
        90.0, gt=0, validation_alias=_env("VIGIL_AUDIT_RETENTION_DAYS", "audit_retention_days")
    )
    audit_purge_interval_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VIGIL_AUDIT_PURGE_INTERVAL_S", "audit_purge_interval_s")
    )
    audit_flush_interval_s: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("VIGIL_AUDIT_FLUSH_INTERVAL_S", "audit_flush_interval_s")
    )

    # --- messaging ----------------------------------------------------------------------
    consumer_max_retries: int = Field(
        3, ge=0, validation_alias=_env("VIGIL_CONSUMER_MAX_RETRIES", "consumer_max_retries")
    )
    consumer_retry_backoff_s: float = Field(
        0.2, ge=0, validation_alias=_env("VIGIL_CONSUMER_RETRY_BACKOFF_S", "consumer_retry_backoff_s")
    )
    outbox_poll_interval_s: float = Field(
        0.5, gt=0, validation_alias=_env("VIGIL_OUTBOX_POLL_INTERVAL_S", "outbox_poll_interval_s")
    )
    outbox_batch_size: int = Field(200, ge=1, validation_alias=_env("VIGIL_OUTBOX_BATCH_SIZE", "outbox_batch_size"))
    # Largest event the outbox accepts: below the broker's 1 MiB record limit, so no row is written
    # that the broker would refuse (the request gets 413 instead).
    outbox_max_payload_bytes: int = Field(
        900_000, ge=1024, le=1_000_000,
        validation_alias=_env("VIGIL_OUTBOX_MAX_PAYLOAD_BYTES", "outbox_max_payload_bytes"),
    )
    # A consumer whose handler hits an outage pauses and retries with jittered backoff up to this.
    consumer_max_backoff_s: float = Field(
        10.0, gt=0, validation_alias=_env("VIGIL_CONSUMER_MAX_BACKOFF_S", "consumer_max_backoff_s")
    )

    # --- HTTP ---------------------------------------------------------------------------
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1, validation_alias=_env("VIGIL_MAX_REQUEST_BYTES", "max_request_bytes")
    )

    # --- plates -------------------------------------------------------------------------
    plate_image_max_bytes: int = Field(
        5 * 1024 * 1024, ge=1, validation_alias=_env("VIGIL_PLATE_IMAGE_MAX_BYTES", "plate_image_max_bytes")
    )
    plate_image_max_pixels: int = Field(
        40_000_000, ge=1, validation_alias=_env("VIGIL_PLATE_IMAGE_MAX_PIXELS", "plate_image_max_pixels")
    )

    # --- exporters ----------------------------------------------------------------------
    exporter_allowed_hosts: str = Field(
        "", validation_alias=_env("VIGIL_EXPORTER_ALLOWED_HOSTS", "exporter_allowed_hosts")
    )
    exporter_timeout_s: float = Field(
        10.0, gt=0, validation_alias=_env("VIGIL_EXPORTER_TIMEOUT_S", "exporter_timeout_s")
    )
    exporter_disable_after_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VIGIL_EXPORTER_DISABLE_AFTER_S", "exporter_disable_after_s")
    )
    exporter_max_held: int = Field(
        10000, ge=0, validation_alias=_env("VIGIL_EXPORTER_MAX_HELD", "exporter_max_held")
    )
    exporter_poll_interval_s: float = Field(
        1.0, gt=0, validation_alias=_env("VIGIL_EXPORTER_POLL_INTERVAL_S", "exporter_poll_interval_s")
    )
    exporter_batch_size: int = Field(
        50, ge=1, validation_alias=_env("VIGIL_EXPORTER_BATCH_SIZE", "exporter_batch_size")
    )
    exporter_max_backoff_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VIGIL_EXPORTER_MAX_BACKOFF_S", "exporter_max_backoff_s")
    )

    # --- websockets ---------------------------------------------------------------------
    ws_queue_size: int = Field(256, ge=1, validation_alias=_env("VIGIL_WS_QUEUE_SIZE", "ws_queue_size"))
    # permessage-deflate compresses every frame once per client; off, a frame is built once and written
    # to every client as is (about a third of the fan-out's CPU at 10 dashboards; frames are small JSON).
    ws_deflate: bool = Field(False, validation_alias=_env("VIGIL_WS_DEFLATE", "ws_deflate"))

    # --- cache --------------------------------------------------------------------------
    cache_ttl_s: int = Field(300, ge=1, validation_alias=_env("VIGIL_CACHE_TTL_S", "cache_ttl_s"))

    # --- faces ---------------------------------------------------------------------------
    faces_max_upload_bytes: int = Field(
        20 * 1024 * 1024, ge=1, validation_alias=_env("VIGIL_FACES_MAX_UPLOAD_BYTES", "faces_max_upload_bytes")
    )
    faces_max_image_pixels: int = Field(
        50_000_000, ge=1, validation_alias=_env("VIGIL_FACES_MAX_IMAGE_PIXELS", "faces_max_image_pixels")
    )
    faces_detect_max_side: int = Field(
        1024, ge=64, validation_alias=_env("VIGIL_FACES_DETECT_MAX_SIDE", "faces_detect_max_side")
    )
    faces_detect_upsample: int = Field(
        1, ge=0, le=3, validation_alias=_env("VIGIL_FACES_DETECT_UPSAMPLE", "faces_detect_upsample")
    )
    faces_workers: int = Field(2, ge=1, le=64, validation_alias=_env("VIGIL_FACES_WORKERS", "faces_workers"))
    faces_queue_size: int = Field(
        32, ge=0, validation_alias=_env("VIGIL_FACES_QUEUE_SIZE", "faces_queue_size")
    )
    faces_match_threshold: float = Field(
        0.6, gt=0, validation_alias=_env("VIGIL_FACES_MATCH_THRESHOLD", "faces_match_threshold")
    )
    faces_hnsw_ef_search: int = Field(
        200, ge=1, le=1000, validation_alias=_env("VIGIL_FACES_HNSW_EF_SEARCH", "faces_hnsw_ef_search")
    )
    faces_job_poll_interval_s: float = Field(
        1.0, gt=0, validation_alias=_env("VIGIL_FACES_JOB_POLL_INTERVAL_S", "faces_job_poll_interval_s")
    )

    # --- people, zones, ReID alerts -------------------------------------------------------
    reid_collection: str = Field(
        "people_reid", min_length=1, max_length=100, validation_alias=_env("VIGIL_REID_COLLECTION", "reid_collection")
    )
    gallery_backend: Literal["qdrant", "pgvector"] = Field(
        "pgvector", validation_alias=_env("VIGIL_GALLERY_BACKEND", "gallery_backend")
    )
    gallery_hnsw_ef_search: int = Field(
        200, ge=1, le=1000, validation_alias=_env("VIGIL_GALLERY_HNSW_EF_SEARCH", "gallery_hnsw_ef_search")
    )
    alert_recent_messages: int = Field(
        200, ge=1, le=100_000, validation_alias=_env("VIGIL_ALERT_RECENT_MESSAGES", "alert_recent_messages")
    )
    # --- alert policies: how often one instance evaluates them (escalation, reminders, quiet resolve)
    alert_policy_interval_s: float = Field(
        2.0, gt=0, le=3600, validation_alias=_env("VIGIL_ALERT_POLICY_INTERVAL_S", "alert_policy_interval_s")
    )
    alert_policy_batch_size: int = Field(
        1000, ge=1, le=100_000, validation_alias=_env("VIGIL_ALERT_POLICY_BATCH_SIZE", "alert_policy_batch_size")
    )
    # Where the telegram channel sends (tests point it at a local receiver).
    telegram_api_base: str = Field(
        "https://api.telegram.org", min_length=1, validation_alias=_env("VIGIL_TELEGRAM_API_BASE", "telegram_api_base")
    )

    # --- scenarios ---------------------------------------------------------------------
    scenario_max_attempts: int = Field(
        3, ge=1, validation_alias=_env("VIGIL_SCENARIO_MAX_ATTEMPTS", "scenario_max_attempts")
    )
    scenario_retry_backoff_s: float = Field(
        2.0, ge=0, validation_alias=_env("VIGIL_SCENARIO_RETRY_BACKOFF_S", "scenario_retry_backoff_s")
    )
    scenario_sample_fps: float = Field(
        5.0, gt=0, validation_alias=_env("VIGIL_SCENARIO_SAMPLE_FPS", "scenario_sample_fps")
    )
    scenario_batch_frames: int = Field(
        16, ge=1, validation_alias=_env("VIGIL_SCENARIO_BATCH_FRAMES", "scenario_batch_frames")
    )
    scenario_stale_run_s: float = Field(
        15.0, gt=0, validation_alias=_env("VIGIL_SCENARIO_STALE_RUN_S", "scenario_stale_run_s")
    )
    # Local video files a scenario may open: only under this directory (default <data dir>/media).
    media_root: Path | None = Field(None, validation_alias=_env("VIGIL_MEDIA_ROOT", "media_root"))
    # Network sources (rtsp, http...) on internal addresses: refused unless listed (hosts or CIDRs).
    scenario_allowed_hosts: str = Field(
        "", validation_alias=_env("VIGIL_SCENARIO_ALLOWED_HOSTS", "scenario_allowed_hosts")
    )
    scenario_stale_queued_s: float = Field(
        600.0, gt=0, validation_alias=_env("VIGIL_SCENARIO_STALE_QUEUED_S", "scenario_stale_queued_s")
    )
    scenario_runner_max_runs: int = Field(
        2, ge=1, validation_alias=_env("VIGIL_SCENARIO_RUNNER_MAX_RUNS", "scenario_runner_max_runs")
    )

    # --- assets -------------------------------------------------------------------------
    assets_debounce_s: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("VIGIL_ASSETS_DEBOUNCE_S", "assets_debounce_s")
    )
    assets_window_s: float = Field(10.0, gt=0, validation_alias=_env("VIGIL_ASSETS_WINDOW_S", "assets_window_s"))
    assets_window_max_readings: int = Field(
        10, ge=1, validation_alias=_env("VIGIL_ASSETS_WINDOW_MAX_READINGS", "assets_window_max_readings")
    )
    assets_smoothing: Literal["trimmed_mean", "median"] = Field(
        "trimmed_mean", validation_alias=_env("VIGIL_ASSETS_SMOOTHING", "assets_smoothing")
    )
    assets_max_batch: int = Field(1000, ge=1, validation_alias=_env("VIGIL_ASSETS_MAX_BATCH", "assets_max_batch"))
    assets_max_future_s: float = Field(
        300.0, ge=0, validation_alias=_env("VIGIL_ASSETS_MAX_FUTURE_S", "assets_max_future_s")
    )
    assets_retention_days: float = Field(
        7.0, gt=0, validation_alias=_env("VIGIL_ASSETS_RETENTION_DAYS", "assets_retention_days")
    )
    assets_rules_interval_s: float = Field(
        30.0, gt=0, validation_alias=_env("VIGIL_ASSETS_RULES_INTERVAL_S", "assets_rules_interval_s")
    )
    assets_cleanup_interval_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VIGIL_ASSETS_CLEANUP_INTERVAL_S", "assets_cleanup_interval_s")
    )

    # --- retention: days to keep each kind of row (0 = keep forever), purged by one instance at a time --
    retention_interval_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VIGIL_RETENTION_INTERVAL_S", "retention_interval_s")
    )
    retention_chunk: int = Field(
        1000, ge=1, le=100_000, validation_alias=_env("VIGIL_RETENTION_CHUNK", "retention_chunk"))
    retention_locations_days: float = Field(
        30.0, ge=0, validation_alias=_env("VIGIL_RETENTION_LOCATIONS_DAYS", "retention_locations_days")
    )
    retention_deliveries_days: float = Field(
        14.0, ge=0, validation_alias=_env("VIGIL_RETENTION_DELIVERIES_DAYS", "retention_deliveries_days")
    )
    retention_predictions_days: float = Field(
        30.0, ge=0, validation_alias=_env("VIGIL_RETENTION_PREDICTIONS_DAYS", "retention_predictions_days")
    )
    retention_geofence_events_days: float = Field(
        90.0, ge=0, validation_alias=_env("VIGIL_RETENTION_GEOFENCE_EVENTS_DAYS", "retention_geofence_events_days")
    )
    retention_resolved_alerts_days: float = Field(
        90.0, ge=0, validation_alias=_env("VIGIL_RETENTION_RESOLVED_ALERTS_DAYS", "retention_resolved_alerts_days")
    )
    retention_plate_events_days: float = Field(
        90.0, ge=0, validation_alias=_env("VIGIL_RETENTION_PLATE_EVENTS_DAYS", "retention_plate_events_days")
    )
    retention_faces_days: float = Field(
        30.0, ge=0, validation_alias=_env("VIGIL_RETENTION_FACES_DAYS", "retention_faces_days")
    )

    # --- dev stack ----------------------------------------------------------------------
    dev_runners: int = Field(1, ge=0, validation_alias=_env("VIGIL_DEV_RUNNERS", "dev_runners"))
    # A runner's own default source, for scenarios created without one (`vigil runner --source`).
    runner_source: str | None = Field(None, max_length=2048,
                                      validation_alias=_env("VIGIL_RUNNER_SOURCE", "runner_source"))

    # --- seed-compatible routes -----------------------------------------------------------
    compat: str = Field("reid,anpr,assets,kanta,scenarios", validation_alias=_env("VIGIL_COMPAT", "compat"))

    @field_validator("compat")
    @classmethod
    def _known_compat(cls, value: str) -> str:
        """`none` (or empty) turns every seed adapter off; otherwise a comma-separated list of seeds."""
        names = [n.strip().lower() for n in value.split(",") if n.strip()]
        if names in ([], ["none"]):
            return "none"
        unknown = sorted(set(names) - set(COMPAT_SEEDS))
        if unknown:
            raise ValueError(f"unknown VIGIL_COMPAT seeds: {', '.join(unknown)} (known: {', '.join(COMPAT_SEEDS)})")
        return ",".join(dict.fromkeys(names))

    @property
    def compat_seeds(self) -> list[str]:
        return [] if self.compat == "none" else self.compat.split(",")

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str | None) -> str | None:
        """Accept plain `postgresql://` URLs and use the asyncpg driver for them."""
        if value is None:
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix):]
        return value

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def media_dir(self) -> Path:
        """Where scenario file sources must live: VIGIL_MEDIA_ROOT, else `<data dir>/media`."""
        return self.media_root if self.media_root is not None else self.data_dir / "media"

    @property
    def devstack_file(self) -> Path:
        return self.data_dir / "devstack.json"

    def with_devstack(self) -> Settings:
        """These settings, with every service URL they leave unset taken from a running dev stack's
        devstack.json (how `vigil runner`, `seed`, `migrate`, `create-key` and Alembic find `make run`)."""
        if not self.devstack_file.exists():
            return self
        info = json.loads(self.devstack_file.read_text())
        updates = {key: info[key] for key in ("database_url", "redis_url", "kafka_bootstrap_servers",
                                               "redpanda_brokers") if not getattr(self, key) and info.get(key)}
        return self.model_copy(update=updates)

    @property
    def redpanda(self) -> str | None:
        """Observations broker; the Kafka broker when no separate Redpanda is named."""
        return self.redpanda_brokers or self.kafka_bootstrap_servers


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()
