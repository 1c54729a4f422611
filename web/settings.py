"""Settings: TOML file, then `CLIENTVAULT__SECTION__KEY` environment overrides, validated.

Only `web` (the app and the CLI) reads settings; everything below receives plain arguments.
Unknown keys are errors, so a typo in the file or the environment never becomes a silent default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from vault.notifications import Cadence

ENV_PREFIX = "CLIENTVAULT__"
CONFIG_ENV = "CLIENTVAULT_CONFIG"
DEFAULT_CONFIG_NAME = "clientvault.toml"


class SettingsError(Exception):
    """The configuration cannot be loaded; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8000"
    workers: int = Field(1, ge=1)
    # Addresses whose X-Forwarded-For is believed (the load balancer); "" trusts nobody.
    forwarded_allow_ips: str = ""
    # On SIGTERM: seconds /readyz answers 503 while the node still serves, then the most
    # seconds requests in flight may take to finish before they are cut.
    shutdown_drain_seconds: float = Field(2, ge=0, le=600)
    shutdown_timeout_seconds: float = Field(60, gt=0, le=86400)

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class DatabaseSettings(_Section):
    url: str = ""
    pool_size: int = Field(10, ge=1)
    pool_timeout_seconds: float = Field(10, gt=0, le=300)


class StorageSettings(_Section):
    backend: Literal["local", "s3"] = "local"
    endpoint_url: str = ""
    region: str = "us-east-1"
    bucket: str = ""
    prefix: str = ""
    access_key_id: str = ""
    secret_access_key: SecretStr = SecretStr("")
    secret_access_key_file: str = ""
    path_style: bool = True
    # Plaintext bytes per stored part: whole 64 KiB segments, at least S3's 5 MiB minimum.
    part_size_mib: int = Field(8, ge=5, le=512)
    concurrency: int = Field(4, ge=1, le=32)
    # Bounds on downloaded ciphertext held in memory: per download, and per process for all
    # downloads together (a download waits for its share rather than exceed it).
    read_ahead_mib: int = Field(16, ge=1, le=1024)
    read_budget_mib: int = Field(96, ge=1, le=65536)
    connect_timeout_seconds: float = Field(5, gt=0)
    read_timeout_seconds: float = Field(60, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)  # per S3 call, with exponential backoff


class KeysSettings(_Section):
    file: str = ""


class SMTPSettings(_Section):
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    password_file: str = ""
    starttls: bool = True
    implicit_tls: bool = False
    timeout_seconds: float = Field(30, gt=0)
    ca_file: str = ""
    from_: str = Field("ClientVault <no-reply@localhost>", alias="from")


class NotifySettings(_Section):
    batch_window_seconds: int = Field(60, ge=0)
    # Run the notifier inside each app process; off when `clientvault notify run` does it.
    worker: bool = True
    # Cadences for users who chose none for a client: clients hear of changes as they
    # happen, staff (and admins) in a digest every 15 minutes; both may change their own.
    client_default_cadence: Cadence = Cadence.IMMEDIATE
    staff_default_cadence: Cadence = Cadence.EVERY_15_MINUTES
    daily_hour: int = Field(8, ge=0, le=23)  # local hour of a daily digest, unless chosen
    max_attempts: int = Field(10, ge=1)  # transient SMTP failures before a message fails
    # Days before its due date an open document request is reminded (and once when overdue).
    reminder_days: int = Field(3, ge=0, le=365)


class AuditSettings(_Section):
    # Seconds between signed checkpoints while the log grows (at most a minute apart).
    checkpoint_interval_seconds: float = Field(60, gt=0, le=60)


class AlertsSettings(_Section):
    # Evaluate the rules inside each app process; off when `clientvault audit alerts` does.
    worker: bool = True
    interval_seconds: float = Field(10, gt=0, le=3600)
    # One person downloading more than `downloads_count` documents in `downloads_minutes`;
    # a count of 0 turns a rule off.
    downloads_count: int = Field(20, ge=0)
    downloads_minutes: int = Field(10, ge=1)
    refusals_count: int = Field(10, ge=0)  # refused requests of one person or address
    refusals_minutes: int = Field(10, ge=1)
    failed_signins_count: int = Field(5, ge=0)  # failed sign-ins from one address
    failed_signins_minutes: int = Field(10, ge=1)
    new_address: bool = True  # a sign-in from an address the account never used
    privilege: bool = True  # a role change, a reset second factor, a key rotation


class AuthSettings(_Section):
    # "auto": Secure, __Host- cookies and HSTS when server.public_url is https.
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    session_idle_minutes: int = Field(30, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    # Roles that must enrol TOTP before reaching anything (comma-separated).
    mfa_required_roles: str = "admin,auditor,staff"
    invitation_valid_hours: int = Field(72, ge=1)
    reset_valid_minutes: int = Field(30, ge=5)
    # Failed sign-ins per account before a lockout, and within what window.
    max_failures: int = Field(5, ge=1)
    failure_window_minutes: int = Field(15, ge=1)
    lockout_minutes: int = Field(1, ge=1)  # doubles with each further failure ...
    max_lockout_minutes: int = Field(60, ge=1)  # ... up to this
    # Failures per client address (many accounts behind one address, e.g. an office NAT).
    address_max_failures: int = Field(50, ge=1)
    # The longest a personal access token lives, whatever expiry was asked for (issue 13).
    token_max_days: int = Field(90, ge=1, le=3660)
    # Personal access tokens are for scripts; client users get them only where the firm says so.
    client_tokens: bool = False
    # Argon2id (RFC 9106 second recommended option); changed values rehash on next sign-in.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8192)
    argon2_parallelism: int = Field(1, ge=1)

    @field_validator("mfa_required_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        roles = {r.strip() for r in value.split(",") if r.strip()}
        unknown = roles - {"client", "staff", "auditor", "admin"}
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        return ",".join(sorted(roles))


class UploadSettings(_Section):
    max_size_gib: int = Field(100, ge=1)
    gc_grace_hours: int = Field(24, ge=0)
    # Resumable (tus) uploads: the PATCH body size advertised to clients, rounded down to
    # whole storage parts (only whole parts are stored), and the idle time before expiry.
    chunk_size_mib: int = Field(256, ge=5, le=4096)
    expire_hours: int = Field(24, ge=1)
    # The most upload parts (plaintext or ciphertext on their way to the store) all uploads
    # of one process hold, counted a part's worth each: past it, requests wait for stored
    # parts before they read more of their bodies (docs/uploads.md, "Memory"). Never less
    # than what one checksummed PATCH holds (eight parts).
    budget_mib: int = Field(128, ge=8, le=65536)


class ScanSettings(_Section):
    # Hold every new version in quarantine until scanned (drops through upload links are
    # held whenever their link's policy says drops are scanned).
    all_uploads: bool = False
    # clamd's LocalSocket; when empty, clamd_host:clamd_port (its TCPSocket); both empty:
    # no scanner, so held versions are "not scanned" and `unscanned` decides.
    clamd_socket: str = ""
    clamd_host: str = ""
    clamd_port: int = Field(3310, ge=1, le=65535)
    timeout_seconds: float = Field(120, gt=0)
    # Larger versions are not scanned; keep at or below clamd's StreamMaxLength.
    max_scan_mib: int = Field(100, ge=1)
    unscanned: Literal["publish", "hold"] = "hold"  # what a version no scanner passed gets
    infected: Literal["keep", "delete"] = "keep"  # keep (encrypted, never served) for review
    # Run the scan worker inside each app process; off when `clientvault scan run` does it.
    worker: bool = True
    interval_seconds: float = Field(5, gt=0)


class LinksSettings(_Section):
    """Firm-wide defaults of share and upload-request links; clients may override them."""

    enabled: bool = True
    # The name a visitor sees on a link's page ("Shared with you by …"); empty: ClientVault.
    firm_name: str = Field("", max_length=200)
    creators: Literal["staff", "staff_and_clients"] = "staff"
    max_expiry_days: int = Field(30, ge=1, le=3650)
    default_expiry_days: int = Field(7, ge=1, le=3650)
    require_password: bool = False
    require_recipient: bool = False
    scan_drops: bool = True
    # A visitor who gave the password or code may use the link this long before asking again.
    unlock_minutes: int = Field(30, ge=1, le=1440)
    code_valid_minutes: int = Field(10, ge=1, le=60)
    # Wrong passwords and codes per link, and per visitor address, before a lockout.
    max_failures: int = Field(5, ge=1)
    address_max_failures: int = Field(20, ge=1)


class PreviewSettings(_Section):
    # Thumbnails are drawn from the decrypted version in memory: larger versions get none.
    thumbnail_max_mib: int = Field(50, ge=1, le=1024)
    # Thumbnails drawn at once per process (each holds its version in memory meanwhile).
    thumbnail_concurrency: int = Field(2, ge=1, le=16)
    # Draw the thumbnails of new images and PDFs in each app process, ahead of any request
    # (folder listings show only thumbnails already drawn); polling the queue this often.
    worker: bool = True
    worker_interval_seconds: float = Field(2, gt=0, le=3600)


class QuotaSettings(_Section):
    # Firm-wide default for clients without their own quota (bytes, every version and the
    # trash counted); 0 is unlimited.
    default_bytes: int = Field(0, ge=0)


class RetentionSettings(_Section):
    worker: bool = (
        True  # apply retention inside each app process (else: `clientvault retention run`)
    )
    interval_minutes: int = Field(60, ge=1)


class MetricsSettings(_Section):
    # GET /metrics answers 404 unless enabled and the request bears this token.
    enabled: bool = False
    token: SecretStr = SecretStr("")
    token_file: str = ""

    @model_validator(mode="after")
    def _token_when_enabled(self) -> MetricsSettings:
        # Metrics name routes and volumes: never serve them to anyone who asks.
        if self.enabled and not (self.token.get_secret_value() or self.token_file):
            raise ValueError("metrics.enabled needs metrics.token or metrics.token_file")
        return self


class LoggingSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Take the request id from an incoming X-Request-Id (set by the load balancer) instead
    # of making one; only when every request reaches the app through that balancer.
    trust_request_id: bool = False


class Settings(_Section):
    data_dir: Path = Path("./clientvault-data")
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    keys: KeysSettings = KeysSettings()
    smtp: SMTPSettings = SMTPSettings()
    notify: NotifySettings = NotifySettings()
    audit: AuditSettings = AuditSettings()
    alerts: AlertsSettings = AlertsSettings()
    uploads: UploadSettings = UploadSettings()
    scan: ScanSettings = ScanSettings()
    previews: PreviewSettings = PreviewSettings()
    quotas: QuotaSettings = QuotaSettings()
    retention: RetentionSettings = RetentionSettings()
    auth: AuthSettings = AuthSettings()
    links: LinksSettings = LinksSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'clientvault.db'}"

    @property
    def keys_path(self) -> Path:
        return Path(self.keys.file) if self.keys.file else self.data_dir / "keys.json"

    @property
    def objects_path(self) -> Path:
        return self.data_dir / "objects"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def secure_cookies(self) -> bool:
        if self.auth.secure_cookies == "auto":
            return self.server.public_url.startswith("https://")
        return self.auth.secure_cookies == "always"

    def s3_secret(self) -> str:
        return _secret(self.storage.secret_access_key, self.storage.secret_access_key_file)

    def smtp_password(self) -> str:
        return _secret(self.smtp.password, self.smtp.password_file)

    def metrics_token(self) -> str:
        return _secret(self.metrics.token, self.metrics.token_file)


def _secret(value: SecretStr, file: str) -> str:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"cannot read secret file {file}: {exc.strerror}") from exc
    return value.get_secret_value()


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: explicit path, else $CLIENTVAULT_CONFIG, else ./clientvault.toml."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings from `path` (see `find_config`) overlaid with the environment."""
    config_path = find_config(path)
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            with config_path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError as exc:
            raise SettingsError(f"config file not found: {config_path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_path}: {exc}") from exc
    _overlay_environment(data, os.environ if environ is None else environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = f" in {config_path}" if config_path else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration{where}: {problems}") from exc


def _overlay_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) == 1:
            data[parts[0]] = value
        elif len(parts) == 2:
            section = data.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise SettingsError(f"{name}: {parts[0]} is not a section")
            section[parts[1]] = value
        else:
            raise SettingsError(f"{name}: expected {ENV_PREFIX}SECTION__KEY or {ENV_PREFIX}KEY")
