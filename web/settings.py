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
    read_ahead_mib: int = Field(32, ge=1, le=1024)
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
    chunk_size_mib: int = Field(64, ge=5, le=4096)
    expire_hours: int = Field(24, ge=1)


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
    uploads: UploadSettings = UploadSettings()
    auth: AuthSettings = AuthSettings()
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
