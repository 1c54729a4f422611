"""A serving process loads what serving needs; the rest loads with its first use. Each of
these is megabytes of memory held for the process's life (README, "Memory")."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

# Loaded by: the S3 store; thumbnails; folder and audit archives (pycryptodome comes with
# stream-zip); TOTP enrolment's QR code; the sessions list's browser names (with PyYAML).
LOADED_WHEN_USED = (
    "boto3",
    "botocore",
    "PIL",
    "pypdfium2",
    "stream_zip",
    "Crypto",
    "segno",
    "ua_parser",
    "yaml",
)


def loaded(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {names!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return [name for name in done.stdout.strip().split(",") if name]


def test_the_app_and_the_server_start_without_what_they_load_on_first_use() -> None:
    assert loaded("import web.app, web.serve", LOADED_WHEN_USED) == []


def test_an_s3_client_loads_neither_boto3_nor_its_transfer_manager() -> None:
    # botocore alone makes the client (storage/s3_client.py); boto3's session would add
    # 2 MiB of modules a store never calls.
    code = (
        "from storage.s3_client import make_s3_client\n"
        "make_s3_client(endpoint_url='http://127.0.0.1:1', region='us-east-1',"
        " access_key_id='a', secret_access_key='b')"
    )
    assert loaded(code, ("boto3", "s3transfer")) == []


def test_each_of_them_is_installed() -> None:
    # Otherwise the check above would pass for a misspelt or uninstalled name.
    missing = [name for name in LOADED_WHEN_USED if importlib.util.find_spec(name) is None]
    assert missing == []
