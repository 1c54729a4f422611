"""Fail when an import points the wrong way.

web -> notify -> vault -> (nothing of ours); storage imports none of ours.
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


def main() -> int:
    bad: list[str] = []
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
