"""Every action of the audit vocabulary reads as a sentence in each of the five languages,
and the vocabulary is the one the code records."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from vault.audit import labels as audit_labels
from vault.audit.actions import ACTIONS, AuditAction
from vault.models import AuditEvent
from web import audit_sentences, i18n

ROOT = Path(__file__).resolve().parents[2]
BRACES = re.compile(r"\{(\w+)\}")
LABELS = {
    "actor_email": "alice@example.test",
    "actor_name": "Alice Example",
    "target_label": "Tax return 2025.pdf",
    "labels_from": "event",
}


def recorded_actions() -> set[str]:
    """Every `AuditAction.…` member the code names, and the action of any `record(session,
    context, "…")` call still spelled as a string."""
    found: set[str] = set()
    for package in ("vault", "web", "notify"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "AuditAction"
                ):
                    found.add(getattr(AuditAction, node.attr).value)
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name != "record" or len(node.args) < 3:
                    continue
                action = node.args[2]
                if isinstance(action, ast.Constant) and isinstance(action.value, str):
                    found.add(action.value)
    return found


def test_the_vocabulary_is_what_the_code_records() -> None:
    recorded = recorded_actions()
    assert len(recorded) > 40
    assert recorded - ACTIONS == set(), "add the new actions to vault/audit/actions.py"


def test_every_action_has_a_sentence() -> None:
    assert set(audit_sentences.TEMPLATES) == ACTIONS


def event(action: str, **fields: object) -> AuditEvent:
    values: dict[str, Any] = {
        "seq": 7,
        "ts": "2026-12-01T10:00:00.000Z",
        "actor_id": "9e92d22e-0000-4000-8000-000000000001",
        "actor_role": "client",
        "action": action,
        "client_id": None,
        "target_type": "document",
        "target_id": "9e92d22e-0000-4000-8000-000000000002",
        "document_id": "9e92d22e-0000-4000-8000-000000000002",
        "ip": "203.0.113.5",
        "outcome": "success",
        "details": json.dumps({"version": 3, "range": "0-1048575", "suppressed": 4}),
        "prev_hash": "0" * 64,
        "leaf_hash": "0" * 64,
        "v": 2,
    }
    values.update(fields)
    return AuditEvent(**values)


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_every_action_reads_in_every_language(lang: str) -> None:
    if lang != i18n.DEFAULT:
        with (ROOT / "web" / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=lang)
    for action in sorted(ACTIONS):
        template = audit_sentences.TEMPLATES[action]
        if lang != i18n.DEFAULT:
            message = catalog.get(template)
            assert message is not None and message.string, f"{lang}: no sentence for {action}"
            assert sorted(BRACES.findall(str(message.string))) == sorted(
                BRACES.findall(template)
            ), f"{lang}: {action} has other placeholders"
        text = audit_sentences.sentence(event(action), LABELS, lang)
        assert text and "{" not in text and "}" not in text, (lang, action, text)
        html = audit_sentences.sentence(event(action), LABELS, lang, html=True)
        assert "{" not in html and "<script" not in html
        if "{actor}" in template:
            assert '<bdi dir="auto">Alice Example</bdi>' in html, (lang, action)
        assert '<bdi dir="ltr">203.0.113.5</bdi>' in html, (lang, action)


def test_the_example_sentence_of_the_issue() -> None:
    text = audit_sentences.sentence(event("document.downloaded"), LABELS, "en", isolate=False)
    assert text == (
        "Alice Example downloaded Tax return 2025.pdf (version 3, bytes 0–1,048,575) "
        "from 203.0.113.5"
    )
    persian = audit_sentences.sentence(event("document.downloaded"), LABELS, "fa", isolate=False)
    assert "۱٬۰۴۸٬۵۷۵" in persian and "را دانلود کرد" in persian


def test_names_cannot_inject_markup_and_keep_their_direction() -> None:
    hostile = {**LABELS, "actor_name": "<img src=x onerror=alert(1)>", "target_label": "דוח.pdf"}
    html = audit_sentences.sentence(event("document.viewed"), hostile, "he", html=True)
    assert "<img" not in html and "&lt;img" in html
    plain = audit_sentences.sentence(event("document.viewed"), hostile, "en")
    assert "\u2068דוח.pdf\u2069" in plain


def test_who_is_named_when_no_person_acted() -> None:
    system = event("storage.collected", actor_id=None, actor_role="system")
    assert audit_sentences.sentence(system, {}, "en", with_ip=False) == (
        "The portal removed unused stored objects"
    )
    gone = event("document.viewed", target_type="document")
    assert audit_sentences.sentence(gone, {}, "en", with_ip=False).startswith(
        "A user who no longer exists opened the details of a document"
    )
    refused = event(
        "auth.login",
        actor_id=None,
        actor_role=None,
        outcome="failure",
        target_type="user",
        document_id=None,
    )
    assert audit_sentences.sentence(
        refused, {"target_label": "bob@example.test"}, "en", isolate=False
    ) == ("A sign-in as bob@example.test was refused from 203.0.113.5")
    preview = event(
        "document.downloaded", details=json.dumps({"version": 1, "disposition": "inline"})
    )
    assert audit_sentences.sentence(preview, LABELS, "en", isolate=False, with_ip=False) == (
        "Alice Example previewed Tax return 2025.pdf (version 1)"
    )


def test_an_email_names_its_recipient() -> None:
    recipient = "9e92d22e-0000-4000-8000-000000000009"
    assert audit_labels.target_ref("notification", "n1", None, {"recipient_id": recipient}) == (
        "user",
        recipient,
    )
    sent = event(
        "notification.sent",
        actor_id=None,
        actor_role="system",
        target_type="notification",
        document_id=None,
        ip=None,
    )
    named = {"target_label": "Bob Globex <bob@example.test>"}
    assert audit_sentences.sentence(sent, named, "en", isolate=False) == (
        "An email was sent to Bob Globex <bob@example.test>"
    )
    assert audit_sentences.sentence(sent, {}, "en") == "An email was sent to a recipient"
