"""Name rules: each attack refused with its rule id, real-world names accepted."""

from __future__ import annotations

import pickle
import sys
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vault.errors import InvalidNameError, VaultError
from vault.lookalikes import is_default_ignorable
from vault.names import (
    BIDI_CONTROLS,
    MAX_DECOMPOSITION,
    MAX_NAME_BYTES,
    RESERVED_NAMES,
    free_name,
    guess_content_type,
    name_key,
    numbered,
    validate_name,
)


def rule_of(name: str) -> str:
    with pytest.raises(InvalidNameError) as caught:
        validate_name(name)
    return caught.value.rule


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        # empty or blank
        ("", "empty"),
        (" ", "empty"),
        ("   ", "empty"),
        ("\u3000", "empty"),  # ideographic space
        ("\u00a0", "empty"),  # no-break space
        # path traversal
        ("../etc/passwd", "path_separator"),
        ("..\\boot.ini", "path_separator"),
        ("a/b", "path_separator"),
        ("a\\b", "path_separator"),
        ("/", "path_separator"),
        ("\\", "path_separator"),
        (".", "dot_name"),
        ("..", "dot_name"),
        # NUL truncation, header and log injection
        ("invoice.pdf\x00.exe", "control_character"),
        ("\x00", "control_character"),
        ("a\r\nSet-Cookie: x=1", "control_character"),
        ("line\nbreak", "control_character"),
        ("carriage\rreturn", "control_character"),
        ("tab\there", "control_character"),
        ("\t", "control_character"),
        ("bell\x07", "control_character"),
        ("escape\x1b[31mred", "control_character"),
        ("delete\x7f", "control_character"),
        ("c1\x85next-line", "control_character"),
        ("c1\x9bcsi", "control_character"),
        ("forged\u2028line", "control_character"),
        ("forged\u2029paragraph", "control_character"),
        # bidi spoofing
        ("invoice\u202efdp.exe", "bidi_control"),
        ("\u202aembed", "bidi_control"),
        ("\u202bembed", "bidi_control"),
        ("\u202cpop", "bidi_control"),
        ("\u202doverride", "bidi_control"),
        ("isolate\u2066x", "bidi_control"),
        ("isolate\u2067x", "bidi_control"),
        ("isolate\u2068x", "bidi_control"),
        ("isolate\u2069x", "bidi_control"),
        ("mark\u200ex", "bidi_control"),
        ("mark\u200fx", "bidi_control"),
        ("arabic\u061cmark", "bidi_control"),
        # lone surrogates
        ("bad\ud800", "invalid_unicode"),
        ("\udfffbad", "invalid_unicode"),
        # whitespace and trailing dots (Windows drops the latter silently)
        (" report.pdf", "leading_whitespace"),
        ("\u3000report.pdf", "leading_whitespace"),
        ("report.pdf ", "trailing_dot_or_space"),
        ("report.pdf\u00a0", "trailing_dot_or_space"),
        ("report.pdf.", "trailing_dot_or_space"),
        ("report.", "trailing_dot_or_space"),
        ("...", "trailing_dot_or_space"),
        # Windows device names, any case, with or without extensions
        ("CON", "reserved_name"),
        ("con", "reserved_name"),
        ("Con.txt", "reserved_name"),
        ("PRN", "reserved_name"),
        ("aux.tar.gz", "reserved_name"),
        ("NUL", "reserved_name"),
        ("nul.txt", "reserved_name"),
        ("nul .txt", "reserved_name"),
        ("NUL:stream", "reserved_name"),
        ("COM1", "reserved_name"),
        ("com9.log", "reserved_name"),
        ("COM0", "reserved_name"),
        ("LPT1", "reserved_name"),
        ("lpt9.pdf", "reserved_name"),
        ("COM\u00b9", "reserved_name"),
        ("lpt\u00b3.txt", "reserved_name"),
        ("CONIN$", "reserved_name"),
        ("conout$.txt", "reserved_name"),
        # too long
        ("a" * 256, "too_long"),
        ("a" * 100_000, "too_long"),
    ],
)
def test_rule(name: str, rule: str) -> None:
    assert rule_of(name) == rule


@pytest.mark.parametrize(
    "name",
    [
        "report.pdf",
        "Report 2024 (final).PDF",
        ".env",
        ".gitignore",
        "a",
        "a.b.c.d",
        "Meeting 10:30.txt",
        'quote".txt',
        "semi;colon.txt",
        "star*question?.txt",
        "percent %41.txt",
        "CONSOLE.txt",  # only the exact device names are reserved
        "icon.png",
        "com10.txt",
        "lpt.txt",
        "my CON.txt",
        "nul-and-void.txt",
        "café.pdf",
        "قرارداد نهایی.pdf",  # Persian
        "نامه\u200cها.docx",  # Persian with ZWNJ
        "חשבונית.pdf",  # Hebrew
        "請求書 2024年.xlsx",  # Japanese
        "合同草案.docx",  # Chinese
        "Счёт.pdf",  # Russian
        "📄 invoice 🧾.pdf",
        "👩\u200d💻 team.zip",  # ZWJ emoji sequence
        "Ελληνικά.txt",
        "\u0130stanbul.txt",
        "fullwidth\uff0fsolidus.txt",  # looks like '/', separates nothing anywhere
    ],
)
def test_accepts(name: str) -> None:
    assert validate_name(name) == unicodedata.normalize("NFC", name)


def test_error_is_a_vault_error_with_a_readable_message() -> None:
    with pytest.raises(InvalidNameError) as caught:
        validate_name("invoice\u202efdp.exe")
    error = caught.value
    assert isinstance(error, VaultError)
    assert error.rule == "bidi_control"
    assert "bidirectional" in str(error)
    assert "U+202E" in str(error)


@pytest.mark.parametrize(
    "name", ["evil\r\nX-Injected: 1", "invoice\u202efdp.exe", "a/../b", "nul.txt"]
)
def test_message_never_echoes_the_name(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        validate_name(name)
    message = str(caught.value)
    assert message.isprintable()
    assert name not in message
    assert "Injected" not in message


def test_error_survives_pickling() -> None:
    error = InvalidNameError("too_long", "Name too long.")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.rule, str(copy)) == ("too_long", "Name too long.")


# 255-byte boundary, measured in UTF-8 after NFC, with 1-, 2-, 3- and 4-byte characters.
@pytest.mark.parametrize(
    ("unit", "width"),
    [("a", 1), ("é", 2), ("ß", 2), ("ب", 2), ("日", 3), ("\u20ac", 3), ("😀", 4)],
)
def test_byte_limit_is_exact(unit: str, width: int) -> None:
    assert len(unit.encode()) == width
    count, pad = divmod(MAX_NAME_BYTES, width)
    fits = unit * count + "x" * pad
    assert len(fits.encode()) == 255
    assert validate_name(fits) == fits
    over = fits + "x"
    assert len(over.encode()) == 256
    assert rule_of(over) == "too_long"


def test_byte_limit_applies_after_nfc() -> None:
    # 127 decomposed é (e + U+0301, 3 bytes each = 381 bytes) compose to 254 bytes.
    decomposed = "e\u0301" * 127
    assert len(decomposed.encode()) == 381
    assert validate_name(decomposed) == "é" * 127
    assert len(validate_name(decomposed + "x").encode()) == 255
    assert rule_of(decomposed + "xx") == "too_long"


def test_too_long_reports_the_size() -> None:
    with pytest.raises(InvalidNameError, match="256"):
        validate_name("日" * 85 + "x")


def test_raw_length_precheck_is_sound() -> None:
    """The pre-NFC cut-off relies on no code point decomposing into more than 4."""
    longest = max(
        len(unicodedata.normalize("NFD", chr(cp)))
        for cp in range(sys.maxunicode + 1)
        if not 0xD800 <= cp <= 0xDFFF
    )
    assert longest <= MAX_DECOMPOSITION
    # Four code points composing into one 3-byte character: 340 in, 255 bytes out, accepted.
    decomposed = unicodedata.normalize("NFD", "\u1f82") * 85
    assert len(decomposed) == 340
    assert validate_name(decomposed) == "\u1f82" * 85


def test_nfc_normalisation() -> None:
    nfd = unicodedata.normalize("NFD", "Café Müller.pdf")
    assert nfd != "Café Müller.pdf"
    assert validate_name(nfd) == "Café Müller.pdf"
    hangul = unicodedata.normalize("NFD", "한국어.txt")
    assert validate_name(hangul) == "한국어.txt"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Report.PDF", "report.pdf"),
        ("REPORT.pdf", "report.PDF"),
        ("café.pdf", unicodedata.normalize("NFD", "café.pdf")),
        ("CAFÉ.PDF", unicodedata.normalize("NFD", "café.pdf")),
        ("Straße.txt", "STRASSE.TXT"),
        ("ΣΊΣΥΦΟΣ.txt", "σίσυφος.txt"),
        ("İstanbul", "i\u0307stanbul"),
    ],
)
def test_name_key_collisions(left: str, right: str) -> None:
    assert name_key(left) == name_key(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [("report.pdf", "report.pdf.pdf"), ("a", "b"), ("résumé", "resume"), ("日本", "日本語")],
)
def test_name_key_keeps_different_names_apart(left: str, right: str) -> None:
    assert name_key(left) != name_key(right)


def test_name_key_is_nfc() -> None:
    key = name_key("\u0130")  # casefolds to i + U+0307, which has no precomposed form
    assert key == unicodedata.normalize("NFC", key)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("report.pdf", "application/pdf"),
        ("REPORT.PDF", "application/pdf"),
        ("scan.jpeg", "image/jpeg"),
        ("photo.png", "image/png"),
        ("data.csv", "text/csv"),
        ("notes.txt", "text/plain"),
        ("letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("image.webp", "image/webp"),
        ("archive.zip", "application/zip"),
        ("archive.tar.gz", "application/gzip"),
        ("archive.tgz", "application/gzip"),
        ("data.csv.gz", "application/gzip"),
        ("data.csv.bz2", "application/x-bzip2"),
        ("no-extension", "application/octet-stream"),
        ("unknown.zzzz", "application/octet-stream"),
        (".pdf", "application/octet-stream"),
        ("data:text/html,hello", "application/octet-stream"),
        ("", "application/octet-stream"),
        ("請求書.pdf", "application/pdf"),
    ],
)
def test_guess_content_type(name: str, content_type: str) -> None:
    assert guess_content_type(name) == content_type


@given(st.text(max_size=300))
@example("invoice\u202efdp.exe")
@example("../x")
@example("e\u0301" * 200)
@example("CON.txt")
def test_accepted_names_are_safe(raw: str) -> None:
    try:
        name = validate_name(raw)
    except InvalidNameError:
        return
    assert name == unicodedata.normalize("NFC", name)
    assert 0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert "/" not in name
    assert "\\" not in name
    assert name not in (".", "..")
    assert name == name.strip()
    assert not name.endswith(".")
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name)
    assert not any(ch in BIDI_CONTROLS for ch in name)
    assert len(name.splitlines()) == 1
    # Idempotent: a stored name always validates to itself.
    assert validate_name(name) == name
    # Fits the name_key column (String(1024)) even after case folding expands it.
    assert len(name_key(name)) <= 1024


@given(st.text())
def test_name_key_is_idempotent(raw: str) -> None:
    key = name_key(raw)
    assert name_key(key) == key
    assert name_key(raw.upper()) == name_key(raw.upper().lower())


@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Zs", "Zl", "Zp")).filter(
            # Default-ignorables only pass where they do a job (tests/vault/test_lookalikes.py).
            lambda ch: (
                ch not in BIDI_CONTROLS and ch not in "/\\.:" and not is_default_ignorable(ch)
            )
        ),
        min_size=1,
        max_size=60,
    )
)
def test_ordinary_names_in_any_script_are_accepted(raw: str) -> None:
    name = raw + ".pdf"
    if raw.upper() in RESERVED_NAMES:
        return
    if len(unicodedata.normalize("NFC", name).encode()) > MAX_NAME_BYTES:
        return
    assert validate_name(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("name", ["Hoshino Trading Co.", "CON", "Smith & Sons, Inc."])
def test_a_client_name_is_not_a_file_name(name: str) -> None:
    # Shown, never written to a disk: Windows' trailing-dot and device-name rules do not apply.
    assert validate_name(name, for_file=False) == name
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize("name", ["Acme/Globex", " Acme", "Acme\u202e", ""])
def test_a_client_name_keeps_the_rules_that_protect_readers(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name, for_file=False)


@pytest.mark.parametrize(
    ("name", "copy"),
    [
        ("plan.txt", "plan (2).txt"),
        ("backup.TAR.gz", "backup (2).TAR.gz"),
        ("notes", "notes (2)"),
        (".env", ".env (2)"),
        ("a.b.c.pdf", "a.b.c (2).pdf"),
    ],
)
def test_a_numbered_copy_keeps_its_extension(name: str, copy: str) -> None:
    assert numbered(name, 2) == copy


def test_a_numbered_copy_of_a_longest_name_still_fits() -> None:
    name = "é" * 123 + ".pdf"  # 250 bytes
    copy = numbered(name, 12)
    assert copy.endswith("é (12).pdf") and len(copy.encode()) <= MAX_NAME_BYTES
    assert validate_name(copy) == copy


def test_a_free_name_avoids_every_name_and_look_alike_taken() -> None:
    assert free_name("fresh.txt", ["plan.txt"]) == "fresh.txt"
    assert free_name("Plan.TXT", ["plan.txt"]) == "Plan (2).TXT"
    taken = ["plan.txt", "plan (2).txt"]
    assert free_name("plan.txt", taken) == "plan (3).txt"
    # `pIan` (capital I) reads as `plan`: neither it nor `pIan (2)` may stand beside them.
    assert free_name("pIan.txt", taken) == "pIan (3).txt"
