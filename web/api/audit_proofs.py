"""The verifiable log: `/audit/checkpoint`, `/audit/checkpoint/key` and RFC 9162 proofs.

Auditors and admins only, as every `/audit` route; each read is itself audited.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from vault.audit import checkpoints
from vault.audit import reads as audit_reads
from vault.audit import tree as audit_tree
from vault.policy import Permission, require
from web.api.common import api_call
from web.context import services
from web.errors import ProblemError

_TEXT = "text/plain; charset=utf-8"
_MAX_DIGITS = 18  # well inside a BIGINT, and no huge integers to parse


def _count(request: Request, name: str) -> int:
    """A positive decimal query parameter: ASCII digits only (no sign, space or `²`)."""
    raw = request.query_params.get(name, "")
    if not raw or not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_DIGITS:
        raise ProblemError(400, "Invalid parameter", f"{name} must be a positive whole number")
    value = int(raw)
    if value < 1:
        raise ProblemError(400, "Invalid parameter", f"{name} must be at least 1")
    return value


def _within(value: int, limit: int, what: str) -> None:
    if value > limit:
        raise ProblemError(400, "Invalid parameter", f"{what} is beyond the log ({limit} events)")


async def checkpoint(request: Request) -> Response:
    svc = services(request)
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        await audit_reads.record_checkpoint_viewed(call.session, call.audit)
    note = await checkpoints.latest(svc.sessions, svc.store, svc.checkpoint_signer.verifier)
    if note is None:
        # The first minute of a new log: sign one now rather than answer with nothing.
        note = await checkpoints.write(svc.sessions, svc.store, svc.checkpoint_signer)
    if note is None:
        raise ProblemError(404, "Not found", "the log holds no checkpoint yet")
    return PlainTextResponse(note, media_type=_TEXT, headers={"Cache-Control": "no-store"})


async def checkpoint_key(request: Request) -> Response:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        key = await checkpoints.show_verifier_key(
            call.session, call.audit, services(request).checkpoint_signer
        )
    return PlainTextResponse(key + "\n", media_type=_TEXT, headers={"Cache-Control": "no-store"})


async def inclusion(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        seq, tree_size = _count(request, "seq"), _count(request, "tree_size")
        _within(tree_size, await audit_tree.log_size(call.session), "tree_size")
        _within(seq, tree_size, "seq")
        await audit_reads.record_inclusion_proof(
            call.session, call.audit, seq=seq, tree_size=tree_size
        )
        reader = await audit_tree.TreeReader.open(call.session)
        path = await reader.inclusion(seq - 1, tree_size)
        leaf = await reader.leaf(seq - 1)
    body = {
        "leaf_index": seq - 1,
        "tree_size": tree_size,
        "leaf_hash": leaf.hex(),
        "audit_path": [h.hex() for h in path],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def consistency(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        require(call.principal, Permission.READ_AUDIT, None)
        first, second = _count(request, "first"), _count(request, "second")
        _within(second, await audit_tree.log_size(call.session), "second")
        _within(first, second, "first")
        await audit_reads.record_consistency_proof(
            call.session, call.audit, first=first, second=second
        )
        reader = await audit_tree.TreeReader.open(call.session)
        path = await reader.consistency(first, second)
    body = {"first": first, "second": second, "consistency_path": [h.hex() for h in path]}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
