"""Fail when an import points the wrong way, or a layer above vault writes the audit log.

web -> notify -> vault -> (nothing of ours); storage imports none of ours. Above vault, an
event is recorded by the vault function that owns its subject (`documents.record_view`,
`people.update_user`, ...), never by `vault.audit`'s appends, so each event's shape is
defined once, next to the change it records.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "web": {"web", "notify", "vault", "storage"},
    "notify": {"notify", "vault"},
    "vault": {"vault"},
    "storage": {"storage"},
}
OURS = set(ALLOWED)
# Third-party libraries that belong to one layer only (vault imports no web or S3 code).
FORBIDDEN_THIRD_PARTY = {
    # Metrics live in web: vault exposes hooks (audit.observe_appends), storage is wrapped.
    "vault": {"starlette", "boto3", "botocore", "aiosmtplib", "uvicorn", "prometheus_client"},
    "storage": {"starlette", "sqlmodel", "sqlalchemy", "aiosmtplib", "prometheus_client"},
    "notify": {"starlette", "boto3", "botocore", "uvicorn"},
}

# vault.audit's writers; its types and reads (AuditContext, SYSTEM, verify, ...) stay open.
AUDIT_MODULE = "vault.audit"
AUDIT_CHAIN = "vault.audit.chain"  # where the writers are defined; the package re-exports them
AUDIT_WRITERS = frozenset({"record", "append", "record_verification"})
# Audit rows are built only in vault/audit/: everyone else records through its functions.
AUDIT_ROWS = frozenset({"AuditEvent", "AuditHead"})
# vault/crypto/ is formats, keys and streams: testable, and reusable, without a database.
CRYPTO_FORBIDDEN = ("sqlalchemy", "sqlmodel", "alembic", "vault.db", "vault.models")


def audit_writes(source: str, filename: str) -> list[str]:
    """Where `source` calls (or imports) one of vault.audit's writers."""
    tree = ast.parse(source, filename)
    modules: set[str] = set()  # names bound to the vault.audit module
    writers: set[str] = set()  # names bound to one of its writers
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if (node.module, alias.name) in {("vault", "audit"), (AUDIT_MODULE, "chain")}:
                    modules.add(alias.asname or alias.name)
                elif node.module in {AUDIT_MODULE, AUDIT_CHAIN} and alias.name in AUDIT_WRITERS:
                    writers.add(alias.asname or alias.name)
                    bad.append(f"{filename}:{node.lineno}: imports {AUDIT_MODULE}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in {AUDIT_MODULE, AUDIT_CHAIN}:
                    modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in AUDIT_WRITERS:
            if ast.unparse(func.value) in modules:
                bad.append(f"{filename}:{node.lineno}: calls {AUDIT_MODULE}.{func.attr}")
        elif isinstance(func, ast.Name) and func.id in writers:
            bad.append(f"{filename}:{node.lineno}: calls {AUDIT_MODULE}.{func.id}")
    return bad


def audit_rows(source: str, filename: str) -> list[str]:
    """Where `source` builds, updates or deletes audit rows itself."""
    bad: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        first = node.args[0] if node.args else None
        if name in AUDIT_ROWS or (
            name in {"update", "delete", "insert"}
            and isinstance(first, ast.Name)
            and first.id in AUDIT_ROWS
        ):
            bad.append(f"{filename}:{node.lineno}: writes audit rows outside vault/audit/")
    return bad


def crypto_imports(source: str, filename: str) -> list[str]:
    """Where `source` (a module of vault/crypto/) imports database code."""
    bad: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if any(name == f or name.startswith(f + ".") for f in CRYPTO_FORBIDDEN):
                bad.append(f"{filename}:{node.lineno}: vault.crypto must not import {name}")
    return bad


def main() -> int:
    bad: list[str] = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in OURS or rel.parts[:2] == ("vault", "audit"):
            continue
        if rel.parts[:2] == ("vault", "migrations"):
            continue
        source = path.read_text(encoding="utf-8")
        bad += audit_rows(source, str(rel))
        if rel.parts[:2] == ("vault", "crypto"):
            bad += crypto_imports(source, str(rel))
    for package in sorted(OURS - {"vault"}):
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += audit_writes(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                line = getattr(node, "lineno", 0)
                for name in names:
                    top = name.split(".")[0]
                    rel = path.relative_to(ROOT)
                    if top in OURS and top not in allowed:
                        bad.append(f"{rel}:{line}: {package} must not import {top}")
                    if top in FORBIDDEN_THIRD_PARTY.get(package, set()):
                        bad.append(f"{rel}:{line}: {package} must not import {top}")
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
