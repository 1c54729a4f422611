"""Downloads through a share link against the same downloads through the API.

    python -m bench.links [--size-mib 256] [--rounds 3] [--ranges 50]

Writes a config (local store, SQLite) in a temporary directory, runs `clientvault init`,
creates a client, a staff user and a token with the CLI, starts `clientvault serve`,
uploads one `--size-mib` document, creates a share link to it, then measures with httpx,
for `GET /api/v1/documents/{id}/content` (Bearer token) and `GET /s/{token}/content` (no
account): whole downloads (SHA-256 checked) and the mean time of `--ranges` 4 KiB ranged
GETs. The link is resolved, its unlock checked, its download counted and audited on each
request, so the difference is what a link costs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _program() -> str:
    program = Path(sys.executable).parent / "clientvault"
    found = str(program) if program.exists() else shutil.which("clientvault")
    if found is None:
        raise SystemExit("the clientvault command is not installed (pip install -e .)")
    return found


def _cli(config: Path, *args: str, stdin: bytes | None = None) -> str:
    command = [_program(), "--config", str(config), *args]
    done = subprocess.run(command, check=True, capture_output=True, input=stdin)  # noqa: S603
    return done.stdout.decode().strip()


def _whole(http: httpx.Client, url: str, headers: dict[str, str], digest: str) -> float:
    hashed = hashlib.sha256()
    started = time.perf_counter()
    with http.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(MiB):
            hashed.update(chunk)
    elapsed = time.perf_counter() - started
    assert hashed.hexdigest() == digest, "the downloaded bytes differ"
    return elapsed


def _ranged(http: httpx.Client, url: str, headers: dict[str, str], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        wanted = {**headers, "Range": f"bytes={i * 65536}-{i * 65536 + 4095}"}
        assert http.get(url, headers=wanted).status_code == 206
    return (time.perf_counter() - started) / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ranges", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cv-bench-links-") as workdir:
        data_dir = Path(workdir) / "data"
        data_dir.mkdir(mode=0o700)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        config = Path(workdir) / "clientvault.toml"
        config.write_text(
            f'data_dir = "{data_dir}"\n[server]\nport = {port}\npublic_url = "{base}"\n'
            "[auth]\nargon2_time_cost = 1\nargon2_memory_kib = 8192\n"
            'mfa_required_roles = "admin,auditor"\n'
        )
        _cli(config, "init")
        client_id = _cli(config, "client", "add", "Acme")
        _cli(
            config, "user", "add", "sam@example.test", "--role", "staff", "--client", "Acme",
            "--password-stdin", stdin=b"a long passphrase for the bench\n",
        )  # fmt: skip
        token = _cli(config, "token", "create", "sam@example.test")
        server = subprocess.Popen(  # noqa: S603
            [_program(), "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _measure(base, client_id, token, args)
        finally:
            server.terminate()
            server.wait()


def _measure(base: str, client_id: str, token: str, args: argparse.Namespace) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=600) as http:
        for _ in range(150):
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        folder = http.post(
            "/api/v1/folders", json={"client_id": client_id, "name": "Bench"}, headers=auth
        ).json()["id"]
        data = os.urandom(MiB) * args.size_mib
        digest = hashlib.sha256(data).hexdigest()
        put = http.put(f"/api/v1/folders/{folder}/files/big.bin", content=data, headers=auth)
        document = put.json()["document_id"]
        expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        link = http.post(
            f"/api/v1/documents/{document}/links", json={"expires_at": expires}, headers=auth
        ).json()
        path = str(link["url"]).removeprefix(base)
        routes: tuple[tuple[str, str, dict[str, str]], ...] = (
            ("API", f"/api/v1/documents/{document}/content", auth),
            ("link", f"{path}/content", {}),
        )
        for label, url, headers in routes:
            rates = [args.size_mib / _whole(http, url, headers, digest) for _ in range(args.rounds)]
            mean = _ranged(http, url, headers, args.ranges) * 1000
            shown = ", ".join(f"{rate:.0f}" for rate in rates)
            print(
                f"{label:4}  whole {args.size_mib} MiB: {shown} MiB/s   4 KiB range: {mean:.1f} ms"
            )


if __name__ == "__main__":
    main()
