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
AUDIT_WRITERS = frozenset({"record", "append", "record_verification"})


def audit_writes(source: str, filename: str) -> list[str]:
    """Where `source` calls (or imports) one of vault.audit's writers."""
    tree = ast.parse(source, filename)
    modules: set[str] = set()  # names bound to the vault.audit module
    writers: set[str] = set()  # names bound to one of its writers
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if node.module == "vault" and alias.name == "audit":
                    modules.add(alias.asname or alias.name)
                elif node.module == AUDIT_MODULE and alias.name in AUDIT_WRITERS:
                    writers.add(alias.asname or alias.name)
                    bad.append(f"{filename}:{node.lineno}: imports {AUDIT_MODULE}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == AUDIT_MODULE:
                    modules.add(alias.asname or AUDIT_MODULE)
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


def main() -> int:
    bad: list[str] = []
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
