"""Everything the routes need, built once in the app's lifespan (or by a CLI command)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import anyio
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import storage
from notify import Mailer, NotifyConfig, UnsubscribeLinks, make_mailer
from storage import ByteBudget, LocalObjectStore
from vault.accounts.passwords import hasher
from vault.accounts.ratelimit import Limits
from vault.accounts.sessions import SessionPolicy
from vault.accounts.signin import SignInPolicy
from vault.audit import alerts
from vault.audit.checkpoints import Signer
from vault.clamd import ClamdScanner
from vault.crypto.digests import RunningDigests
from vault.crypto.keyring import KeyFile, Keyring
from vault.db import create_engine, session_factory
from vault.models import Role
from vault.scanning import Infected, ScanPolicy, Unscanned
from vault.store import ObjectStore
from vault.uploads import append as upload_append
from web.datadir import prepare_data_dir
from web.metrics import InstrumentedStore, Metrics
from web.settings import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: ObjectStore
    keyring: Keyring
    # The app's metrics (None for CLI commands); the store above is then instrumented.
    metrics: Metrics | None = None

    @property
    def part_size(self) -> int:
        return self.settings.storage.part_size_mib * MiB

    @property
    def max_upload_size(self) -> int:
        return self.settings.uploads.max_size_gib * 1024 * MiB

    @cached_property
    def upload_budget(self) -> ByteBudget:
        """This process's budget of upload parts in memory (`vault.uploads.append`): at
        least what one checksummed PATCH holds with the configured part size."""
        least = upload_append.REQUEST_PARTS * self.part_size
        return ByteBudget(max(self.settings.uploads.budget_mib * MiB, least))

    @cached_property
    def upload_digests(self) -> RunningDigests:
        """This process's running SHA-256 of the uploads it receives (a cache only)."""
        return RunningDigests()

    @cached_property
    def thumbnail_limiter(self) -> anyio.CapacityLimiter:
        """Bounds the versions held in memory to draw thumbnails, per process."""
        return anyio.CapacityLimiter(self.settings.previews.thumbnail_concurrency)

    @property
    def thumbnail_max_bytes(self) -> int:
        return self.settings.previews.thumbnail_max_mib * MiB

    @cached_property
    def checkpoint_signer(self) -> Signer:
        """The audit log's checkpoint key (added to an older keyring on first use)."""
        return Signer.from_keyring(self.keyring)

    @cached_property
    def password_hasher(self) -> PasswordHasher:
        auth = self.settings.auth
        return hasher(
            time_cost=auth.argon2_time_cost,
            memory_kib=auth.argon2_memory_kib,
            parallelism=auth.argon2_parallelism,
        )

    @cached_property
    def signin_policy(self) -> SignInPolicy:
        auth = self.settings.auth
        window = timedelta(minutes=auth.failure_window_minutes)
        lockout = timedelta(minutes=auth.lockout_minutes)
        longest = timedelta(minutes=auth.max_lockout_minutes)
        return SignInPolicy(
            account_limits=Limits(auth.max_failures, window, lockout, longest),
            address_limits=Limits(auth.address_max_failures, window, lockout, longest),
            mfa_roles=frozenset(Role(r) for r in auth.mfa_required_roles.split(",") if r),
        )

    @cached_property
    def session_policy(self) -> SessionPolicy:
        auth = self.settings.auth
        return SessionPolicy(
            idle=timedelta(minutes=auth.session_idle_minutes),
            absolute=timedelta(hours=auth.session_absolute_hours),
        )


def scan_policy(settings: Settings) -> ScanPolicy:
    scan = settings.scan
    scanner = None
    if scan.clamd_socket or scan.clamd_host:
        scanner = ClamdScanner(
            socket_path=scan.clamd_socket,
            host=scan.clamd_host,
            port=scan.clamd_port,
            timeout=scan.timeout_seconds,
        )
    return ScanPolicy(
        scanner=scanner,
        max_bytes=scan.max_scan_mib * MiB,
        unscanned=Unscanned(scan.unscanned),
        infected=Infected(scan.infected),
    )


def build_store(settings: Settings) -> ObjectStore:
    # One budget of read windows per store, and a store per process (built in the lifespan).
    budget = ByteBudget(settings.storage.read_budget_mib * MiB)
    if settings.storage.backend == "s3":
        client = storage.make_s3_client(
            endpoint_url=settings.storage.endpoint_url or None,
            region=settings.storage.region,
            access_key_id=settings.storage.access_key_id or None,
            secret_access_key=settings.s3_secret() or None,
            path_style=settings.storage.path_style,
            max_pool_connections=max(32, settings.storage.concurrency * 8),
            max_attempts=settings.storage.max_attempts,
            connect_timeout=settings.storage.connect_timeout_seconds,
            read_timeout=settings.storage.read_timeout_seconds,
        )
        return storage.S3ObjectStore(
            client=client,
            bucket=settings.storage.bucket,
            prefix=settings.storage.prefix,
            part_concurrency=settings.storage.concurrency,
            # Ranged GETs of up to 8 MiB: each costs the S3 server and this process a
            # request's worth of work, whatever its size (docs/downloads.md).
            read_chunk_size=min(settings.storage.part_size_mib, 8) * MiB,
            read_ahead=settings.storage.read_ahead_mib * MiB,
            budget=budget,
        )
    settings.objects_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return LocalObjectStore(
        settings.objects_path,
        # A read handed to a worker thread costs about 0.1 ms, as much as
        # copying a megabyte: windows of 4 MiB make that a small share.
        read_chunk_size=min(settings.storage.part_size_mib, 4) * MiB,
        budget=budget,
    )


def build_mailer(settings: Settings) -> Mailer:
    return make_mailer(
        host=settings.smtp.host,
        port=settings.smtp.port,
        username=settings.smtp.username,
        password=settings.smtp_password(),
        starttls=settings.smtp.starttls,
        implicit_tls=settings.smtp.implicit_tls,
        timeout=settings.smtp.timeout_seconds,
        outbox_dir=settings.outbox_path,
        ca_file=settings.smtp.ca_file,
    )


def notify_config(settings: Settings, keyring: Keyring) -> NotifyConfig:
    return NotifyConfig(
        public_url=settings.server.public_url,
        links=UnsubscribeLinks(keyring, settings.server.public_url),
        sender=settings.smtp.from_,
        batch_window_seconds=settings.notify.batch_window_seconds,
        max_attempts=settings.notify.max_attempts,
        client_default_cadence=settings.notify.client_default_cadence,
        staff_default_cadence=settings.notify.staff_default_cadence,
        daily_hour=settings.notify.daily_hour,
        reminder_days=settings.notify.reminder_days,
    )


def alert_rules(settings: Settings) -> alerts.Rules:
    """The `[alerts]` settings as the rules `vault.audit.alerts` evaluates (a count of 0: off)."""
    a = settings.alerts

    def threshold(count: int, minutes: int) -> alerts.Threshold | None:
        return alerts.Threshold(count, minutes) if count > 0 else None

    return alerts.Rules(
        downloads=threshold(a.downloads_count, a.downloads_minutes),
        refusals=threshold(a.refusals_count, a.refusals_minutes),
        failed_signins=threshold(a.failed_signins_count, a.failed_signins_minutes),
        new_address=a.new_address,
        privilege=a.privilege,
    )


def load_keyring(settings: Settings) -> Keyring:
    return Keyring(KeyFile(settings.keys_path))


@asynccontextmanager
async def open_services(
    settings: Settings, *, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
    # Before anything is created in it: the app lifespan and every CLI command refuse a
    # data directory others can read (review item 10).
    prepare_data_dir(settings)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database.pool_size,
        wait_seconds=settings.database.pool_timeout_seconds,
    )
    store = build_store(settings)
    try:
        yield Services(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            store=store if metrics is None else InstrumentedStore(store, metrics),
            keyring=load_keyring(settings),
            metrics=metrics,
        )
    finally:
        await engine.dispose()
