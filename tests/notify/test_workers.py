"""The two ways the notifier runs: inside each app process (started by the app's lifespan, as
`clientvault serve` does) and as `clientvault notify run`. With no SMTP host configured, both
write `.eml` files to `{data_dir}/outbox/`."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from pathlib import Path

import anyio.to_thread
from asgi_lifespan import LifespanManager
from click.testing import CliRunner

from tests.fixtures.app import World
from vault import audit
from vault.db import transaction
from web.app import create_app
from web.cli import main
from web.services import Services
from web.settings import NotifySettings, Settings


async def upload(services: Services, world: World, name: str) -> None:
    sam = world["sam"]
    context = audit.AuditContext(actor_id=str(sam.id), actor_role=sam.role.value)
    document_id = uuid.uuid4()
    async with transaction(services.sessions) as session:
        await audit.append(
            session,
            context,
            "document.created",
            client_id=world.acme,
            target_type="document",
            target_id=document_id,
            document_id=document_id,
            details={"name": name, "folder_id": str(world.acme_folder), "version": 1},
        )


def outbox_files(settings: Settings) -> list[Path]:
    directory = settings.outbox_path
    return sorted(directory.glob("*.eml")) if directory.is_dir() else []


def recipients(files: list[Path]) -> list[str]:
    return [
        str(email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["To"])
        for f in files
    ]


async def test_the_app_runs_a_notifier(
    services: Services, world: World, settings: Settings
) -> None:
    await upload(services, world, "in-process.pdf")
    app_settings = settings.model_copy(
        update={"notify": NotifySettings(worker=True, batch_window_seconds=0)}
    )
    async with LifespanManager(create_app(app_settings)):
        for _ in range(200):
            if outbox_files(settings):
                break
            await asyncio.sleep(0.05)
    files = outbox_files(settings)
    assert recipients(files) == [world["alice"].email]
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_clientvault_notify_run_once(
    services: Services, world: World, settings: Settings, tmp_path: Path
) -> None:
    await upload(services, world, "from-the-cli.pdf")
    config = tmp_path / "clientvault.toml"
    config.write_text(
        "\n".join(
            [
                f"data_dir = {json.dumps(str(settings.data_dir))}",
                "[database]",
                f"url = {json.dumps(settings.database.url)}",
                "[notify]",
                "batch_window_seconds = 0",
                "worker = false",
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    def invoke() -> str:
        result = CliRunner().invoke(main, ["--config", str(config), "notify", "run", "--once"])
        assert result.exit_code == 0, result.output
        return result.output

    output = await anyio.to_thread.run_sync(invoke)
    assert "sent=1" in output
    assert recipients(outbox_files(settings)) == [world["alice"].email]
    # A second run finds nothing more to send.
    await anyio.to_thread.run_sync(invoke)
    assert len(outbox_files(settings)) == 1
