"""Check a ClientVault audit export offline: no database, no server, no ClientVault code.

    python verify_export.py audit.jsonl --key checkpoint.key
    python verify_export.py audit-csv.zip --key checkpoint.key

The key file holds the log's verifier key (GET /api/v1/audit/checkpoint/key), obtained
once, from someone you trust, not from the export. Exit status 0: the export is exactly
the events it claims to be, from the log the key signs for; 1: a problem is named.
Needs Python 3.11+ and `cryptography`. docs/audit.md, the auditor's guide, explains
how to get the key and an export, each step of the check and each FAILED line.
This file is identical to vault/audit/export_check.py (a test keeps them so).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hashlib
import io
import itertools
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_HEADER = "clientvault-audit-export/v1"
GENESIS = "0" * 64
CSV_FIELDS: tuple[str, ...] = ("seq", "ts", "actor_id", "actor_role", "action", "outcome")
CSV_FIELDS += ("client_id", "target_type", "target_id", "document_id", "ip", "user_agent")
CSV_FIELDS += ("details", "prev")
# Entry format 2 also hashes these. A format 1 event was written before they existed: an
# export shows it with labels joined from the portal's current tables, marked
# `labels_from: "current"`, which no hash covers, so they are set aside before hashing.
LABEL_FIELDS = ("actor_email", "actor_name", "target_label")


class ExportError(Exception):
    """The export, its trailer or the key cannot be read at all."""


@dataclass
class Report:
    events: int = 0
    tree_size: int = 0
    filtered: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- RFC 9162 §2.1 -----------------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class _Tree:
    """MTH (RFC 9162 §2.1.1) of leaves pushed in order, in O(log n) memory."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []

    def push(self, leaf: bytes) -> None:
        size, digest = 1, leaf
        while self.stack and self.stack[-1][0] == size:
            left_size, left = self.stack.pop()
            size, digest = left_size + size, _node(left, digest)
        self.stack.append((size, digest))

    def root(self) -> bytes:
        digest = self.stack[-1][1] if self.stack else hashlib.sha256(b"").digest()
        for _, left in reversed(self.stack[:-1]):
            digest = _node(left, digest)
        return digest


def _included(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# --- C2SP signed-note and tlog-checkpoint --------------------------------------------------


@dataclass(frozen=True)
class Key:
    name: str
    id: bytes
    public: Ed25519PublicKey


def read_key(text: str) -> Key:
    """`<name>+<8 hex key id>+<base64(0x01 || Ed25519 public key)>`."""
    try:
        name, hex_id, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error):
        raise ExportError("the key is not <name>+<key id>+<base64 key>") from None
    if len(raw) != 33 or raw[0] != 1:
        raise ExportError("the key is not an Ed25519 note key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != wanted:
        raise ExportError("the key id does not match the key name and key")
    return Key(name, wanted, Ed25519PublicKey.from_public_bytes(raw[1:]))


def open_note(note: str, key: Key) -> list[str]:
    """The lines of a signed note's text, once the key's signature over it checks out."""
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note")
    prefix = f"\u2014 {key.name} "
    for line in signatures.rstrip("\n").split("\n"):
        if not line.startswith(prefix):
            continue
        blob = base64.b64decode(line[len(prefix) :], validate=True)
        if blob[:4] != key.id:
            continue
        try:
            key.public.verify(blob[4:], (text + "\n").encode())
        except InvalidSignature:
            raise ValueError(f"the signature by {key.name} does not verify") from None
        return text.split("\n")
    raise ValueError(f"no signature by {key.name}")


# --- the export ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    seq: int
    leaf: bytes
    prev: str
    path: list[bytes]


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _leaf(entry: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + _canonical(entry)).digest()


def _path(raw: Any) -> list[bytes]:
    return [bytes.fromhex(h) for h in raw or []]


def _json_events(lines: Iterable[str], report: Report) -> Iterator[Event]:
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
            stated = entry.pop("leaf_hash")
            path = _path(entry.pop("audit_path", None))
            entry.pop("labels_from", None)
            if entry.get("v") == 1:
                for name in LABEL_FIELDS:
                    entry.pop(name, None)
            seq = entry["seq"]
            if not isinstance(seq, int):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            report.problems.append(f"line {number} is not an exported event")
            continue
        leaf = _leaf(entry)
        if leaf.hex() != stated:
            report.problems.append(f"event {seq} was altered (its content no longer hashes)")
        yield Event(seq, leaf, entry.get("prev", ""), path)


def _csv_version(row: dict[str, str]) -> int:
    return int(row.get("v") or 1)  # exports made before format 2 have no `v` column


def _csv_fields(row: dict[str, str]) -> tuple[str, ...]:
    return CSV_FIELDS + LABEL_FIELDS if _csv_version(row) >= 2 else CSV_FIELDS


def _csv_entry(row: dict[str, str], choice: dict[str, str | None]) -> dict[str, Any]:
    entry: dict[str, Any] = {name: choice.get(name, row[name]) for name in _csv_fields(row)}
    entry["seq"] = int(row["seq"])
    entry["details"] = json.loads(entry["details"] or "{}")
    entry["v"] = _csv_version(row)
    return entry


def _csv_leaf(row: dict[str, str]) -> bytes | None:
    """The leaf hash of a CSV row. CSV loses two facts the hash covers: null versus "",
    and the quote that defuses a spreadsheet formula versus a value that began with a
    quote; each reading of those cells is tried until one hashes to the row's leaf_hash."""
    options: dict[str, list[str | None]] = {}
    for name in _csv_fields(row):
        value = row[name]
        if name in ("seq", "details"):
            continue
        if value == "":
            options[name] = [None, ""]
        elif value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r"):
            options[name] = [value[1:], value]
    names = list(options)
    for combo in itertools.islice(itertools.product(*options.values()), 4096):
        leaf = _leaf(_csv_entry(row, dict(zip(names, combo, strict=True))))
        if leaf.hex() == row["leaf_hash"]:
            return leaf
    return None


def _csv_events(text: str, paths: dict[int, list[bytes]], report: Report) -> Iterator[Event]:
    for row in csv.DictReader(io.StringIO(text, newline="")):
        try:
            seq = int(row["seq"])
            leaf = _csv_leaf(row)
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"row {row.get('seq')!r} is not an exported event")
            continue
        if leaf is None:
            report.problems.append(f"event {seq} was altered (its content no longer hashes)")
            leaf = bytes.fromhex(row["leaf_hash"]) if len(row["leaf_hash"]) == 64 else b""
        yield Event(seq, leaf, row["prev"], paths.get(seq, []))


def _trailer(line: str) -> dict[str, Any]:
    try:
        trailer = json.loads(line)
    except ValueError:
        trailer = None
    if not isinstance(trailer, dict) or "checkpoint" not in trailer:
        raise ExportError("the export ends without its checkpoint line (truncated?)")
    return trailer


def _check(events: Iterable[Event], trailer: dict[str, Any], key: Key, report: Report) -> None:
    try:
        head = open_note(trailer["checkpoint"], key)
        if head[0] != key.name or not head[1].isdigit():
            raise ValueError("not a checkpoint of this log")
        size, root = int(head[1]), base64.b64decode(head[2], validate=True)
        manifest = open_note(trailer["manifest"], key)
        if manifest[0] != MANIFEST_HEADER or manifest[1] != f"origin {key.name}":
            raise ValueError("not an export manifest of this log")
        fields = dict(line.split(" ", 1) for line in manifest[2:])
        count, digest = int(fields["events"]), fields["leaves"]
        filters = json.loads(fields["filters"])
        if int(fields["tree_size"]) != size:
            raise ValueError("the manifest and the checkpoint disagree on the tree size")
    except (KeyError, ValueError, TypeError, IndexError, binascii.Error) as exc:
        report.problems.append(f"checkpoint or manifest rejected: {exc}")
        return
    report.tree_size, report.filtered = size, bool(filters)
    tree, running, last, prev = _Tree(), hashlib.sha256(), 0, GENESIS
    for event in events:
        report.events += 1
        running.update(event.leaf)
        if event.seq <= last:
            report.problems.append(f"event {event.seq} is out of order")
        if not report.filtered:
            if event.seq != last + 1:
                report.problems.append(f"event {last + 1} is missing")
            if event.prev != prev:
                report.problems.append(f"event {event.seq} does not follow the one before it")
            tree.push(event.leaf)
            prev = event.leaf.hex()
        elif not _included(event.leaf, event.seq - 1, size, event.path, root):
            report.problems.append(f"event {event.seq} is not in the log at position {event.seq}")
        last = max(last, event.seq)
    if not report.filtered and (last != size or tree.root() != root):
        report.problems.append(f"the events do not form the log of {size} events signed")
    if report.events != count or running.hexdigest() != digest:
        report.problems.append(
            f"the export holds {report.events} events, the signed manifest {count}, "
            "or not the same ones: an event was removed, added or changed"
        )


def verify_jsonl(path: str, key: Key) -> Report:
    report = Report()
    count, last = 0, ""
    with open(path, encoding="utf-8") as file:
        for line in file:
            count, last = count + 1, line
    trailer = _trailer(last)

    def lines() -> Iterator[str]:
        with open(path, encoding="utf-8") as file:
            yield from itertools.islice(file, count - 1)

    _check(_json_events(lines(), report), trailer, key, report)
    return report


def verify_csv_zip(path: str, key: Key) -> Report:
    report = Report()
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        needed = {"audit.csv", "audit.checkpoint", "audit.proof.jsonl"}
        if not needed <= names:
            raise ExportError(f"the zip needs {', '.join(sorted(needed))}")
        proof = archive.read("audit.proof.jsonl").decode().splitlines()
        trailer = _trailer(proof[-1] if proof else "")
        if archive.read("audit.checkpoint").decode() != trailer["checkpoint"]:
            report.problems.append("audit.checkpoint is not the checkpoint of the proof")
        paths = {p["seq"]: _path(p["audit_path"]) for p in map(json.loads, proof[:-1])}
        text = archive.read("audit.csv").decode("utf-8")
    _check(_csv_events(text, paths, report), trailer, key, report)
    return report


def verify(path: str, key_text: str) -> Report:
    """Check the export at `path` (JSON Lines, or the CSV zip) against a verifier key."""
    key = read_key(key_text)
    return verify_csv_zip(path, key) if zipfile.is_zipfile(path) else verify_jsonl(path, key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a ClientVault audit export offline.")
    parser.add_argument("export", help="audit.jsonl, or the zip of a CSV export")
    parser.add_argument("--key", required=True, help="file holding the log's verifier key")
    args = parser.parse_args(argv)
    try:
        with open(args.key, encoding="utf-8") as file:
            report = verify(args.export, file.read())
    except (OSError, ExportError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if report.ok:
        kind = "filtered export" if report.filtered else "complete log"
        print(f"ok: {report.events} events, {kind}, checkpoint of {report.tree_size} events")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
