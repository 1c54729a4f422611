"""Rules for client, folder and document names: a hostile-input boundary.

Every name a user types (or an upload carries) passes through `validate_name` before it is
stored. Names are never used to build storage keys or filesystem paths (keys come from ids),
but they do end up in HTTP headers, audit logs, e-mails, browser pages and, once downloaded,
on the user's own disk. The rules below close the attacks that reach those places:

* Path traversal (`../../etc/passwd`, `..\\boot.ini`): separators and dot names are refused, so
  a name is always a single path component wherever it is later written to disk.
* NUL truncation (`invoice.pdf\\x00.exe`): C code and some filesystems stop at the NUL and see
  a different name from the one we checked.
* Header and log injection (`a\\r\\nSet-Cookie: ...`, forged audit lines): no C0/C1 control
  character, DEL or Unicode line/paragraph separator survives.
* Bidi spoofing (`invoice\\u202Efdp.exe` renders as `invoiceexe.pdf`): explicit bidirectional
  formatting characters are refused, so what is displayed is what is stored.
* Windows device names (`CON`, `nul.txt`, `COM1.tar.gz`): opening such a name on Windows opens
  a device, not a file, so a download saved under it is lost or hangs the program.
* Look-alikes (`Invoice\u00a02026.pdf`, `In\u00advoice.pdf`): invisible and default-ignorable
  characters and look-alike spaces are refused (`vault.lookalikes`); a name confusable with
  a sibling's is refused where documents and folders are created (TR39 skeletons).
* Windows trailing dot/space stripping (`report.pdf.`, `report.pdf `): Windows silently saves
  these as a different name, which can collide with or masquerade as another file.

Policy: every rule REJECTS with a stable `rule` id; nothing is silently rewritten (not even
surrounding whitespace), because a name that changes behind the user's back is a surprise and
a spoofing aid. The one transformation is Unicode NFC normalisation, which changes the code
points but never how the name looks, so that visually identical names are stored identically.

Deliberately allowed: non-Latin scripts, emoji (including ZWJ sequences), ZWNJ (needed by
Persian), leading dots (`.env`), and `: * ? " < > |`. Those last characters are legal on
macOS and Linux and are common in real names (`Meeting 10:30.txt`); they are harmless here
because names never become server paths, and browsers replace them when saving on Windows.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Iterable, Sequence

from vault.errors import InvalidNameError
from vault.lookalikes import confusable_with, find_invisible

# NAME_MAX of ext4, XFS and btrfs. No character needs fewer UTF-8 bytes than UTF-16 code
# units, so such a name also fits NTFS's and exFAT's limit of 255 UTF-16 units.
MAX_NAME_BYTES = 255

# The longest canonical decomposition of any code point is 4 (e.g. U+1F82), so NFD never
# shrinks a string and NFC(x) has at least len(x) / 4 code points. A name longer than this
# therefore cannot pass the byte limit after NFC, and we refuse it before normalising, so a
# megabyte of input costs nothing. tests/vault/test_names.py re-checks the constant.
MAX_DECOMPOSITION = 4
_MAX_RAW_CODE_POINTS = MAX_DECOMPOSITION * MAX_NAME_BYTES

_SURROGATE = re.compile("[\ud800-\udfff]")

# Explicit bidi formatting characters (Unicode UAX #9 §2): embeddings and overrides
# U+202A..U+202E, isolates U+2066..U+2069, and the marks LRM, RLM and ALM. Without them
# `invoice\u202Efdp.exe` cannot display as `invoiceexe.pdf` (Trojan Source, CVE-2021-42574).
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)

# U+2028/U+2029 are not Cc, but str.splitlines(), JavaScript and many log viewers break lines
# on them, which makes them as good as LF for forging a log line.
_LINE_SEPARATORS = frozenset("\u2028\u2029")

PATH_SEPARATORS = frozenset("/\\")

# Microsoft, "Naming Files, Paths, and Namespaces": these open a device, with or without an
# extension. COM0/LPT0 and the superscript-digit forms are listed there too; CONIN$ and
# CONOUT$ name the console in CreateFile.
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"]
)
# Windows matches the device name on what comes before the first dot (an extension) or colon
# (a stream or the `NUL:` form), ignoring trailing spaces: `nul .txt` is the device too.
_DEVICE_STEM_END = re.compile(r"[.:]")


def _code_point(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def validate_name(name: str, *, for_file: bool = True) -> str:
    """Check a file or folder name and return its NFC form.

    Args:
        name: The name as received from the user.
        for_file: False for a client's name, which is shown but never becomes a file name:
            it may end with a dot ("Hoshino Trading Co.") or be a Windows device name.

    Returns:
        The name in Unicode NFC, to be stored and displayed.

    Raises:
        InvalidNameError: If any rule is broken; `rule` says which.
    """
    if name == "":
        raise InvalidNameError("empty", "Name must not be empty.")
    if len(name) > _MAX_RAW_CODE_POINTS:
        raise InvalidNameError(
            "too_long", f"Name must be at most {MAX_NAME_BYTES} bytes long in UTF-8."
        )
    # A lone surrogate is not Unicode text: it cannot be encoded as UTF-8 for the database,
    # a header or a filesystem, so it fails here rather than somewhere downstream.
    surrogate = _SURROGATE.search(name)
    if surrogate is not None:
        raise InvalidNameError(
            "invalid_unicode",
            f"Name must be valid Unicode text (found lone surrogate "
            f"{_code_point(surrogate.group())}).",
        )

    # NFC first, so that every later rule judges exactly the form that is stored.
    name = unicodedata.normalize("NFC", name)

    for ch in name:
        if unicodedata.category(ch) == "Cc" or ch in _LINE_SEPARATORS:
            # Cc is exactly C0 (U+0000..U+001F, incl. NUL, TAB, LF, CR), DEL and C1
            # (U+0080..U+009F): NUL truncation and CR/LF header or log injection.
            raise InvalidNameError(
                "control_character",
                f"Name must not contain control or line-break characters "
                f"(found {_code_point(ch)}).",
            )
    for ch in name:
        if ch in BIDI_CONTROLS:
            raise InvalidNameError(
                "bidi_control",
                f"Name must not contain bidirectional control characters, which can make it "
                f"display differently from what it is (found {_code_point(ch)}).",
            )
    if any(ch in PATH_SEPARATORS for ch in name):
        raise InvalidNameError("path_separator", "Name must not contain '/' or '\\'.")
    if name.strip() == "":
        raise InvalidNameError("empty", "Name must not be empty or only whitespace.")
    if name in (".", ".."):
        raise InvalidNameError("dot_name", "Name must not be '.' or '..'.")
    # Surrounding whitespace is invisible in most UIs, so `report.pdf` and ` report.pdf` would
    # look like one name; we refuse rather than trim so the user sees what they get.
    if name[0].isspace():
        raise InvalidNameError("leading_whitespace", "Name must not start with whitespace.")
    if name[-1].isspace() or (for_file and name[-1] == "."):
        raise InvalidNameError(
            "trailing_dot_or_space",
            "Name must not end with a dot or whitespace (Windows silently drops them).",
        )
    hidden = find_invisible(name)
    if hidden is not None:
        raise InvalidNameError(
            "invisible_character",
            f"Name must not contain invisible characters or look-alike spaces, which make it "
            f"read as another name (found {_code_point(hidden)}).",
        )
    device = _DEVICE_STEM_END.split(name, maxsplit=1)[0].rstrip(" ").upper()
    if for_file and device in RESERVED_NAMES:
        raise InvalidNameError(
            "reserved_name",
            f"Name must not be the Windows device name {device}, with or without an extension.",
        )
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidNameError(
            "too_long",
            f"Name must be at most {MAX_NAME_BYTES} bytes long in UTF-8 (this one is {size}).",
        )
    return name


def check_distinct(name: str, siblings: Iterable[str]) -> None:
    """Refuse `name` if it could be taken for one of `siblings` (TR39 skeletons).

    Raises:
        InvalidNameError: rule `confusable`.
    """
    if confusable_with(name, siblings) is not None:
        raise InvalidNameError(
            "confusable",
            "Name looks the same as another name in this folder but is spelled with different "
            "characters (for example a Cyrillic letter for a Latin one); choose a name that "
            "reads differently.",
        )


def name_key(name: str) -> str:
    """Return the key under which a name must be unique within its parent folder.

    NFC, then full Unicode case folding, then NFC again (case folding can leave a string
    unnormalised, e.g. U+0130 folds to `i` + U+0307). So `Report.PDF` and `report.pdf`, and
    the NFC and NFD spellings of `café`, share a key: folders stay unambiguous on
    case-insensitive filesystems (Windows, macOS) after download.

    Args:
        name: A name, normally already passed through `validate_name`.

    Returns:
        The comparison key.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


# The suffix a numbered copy takes before: `.tar.gz` stays whole (`backup (2).tar.gz`).
_DOUBLE_SUFFIX = re.compile(r"\.tar\.[^.]+$", re.IGNORECASE)


def numbered(name: str, number: int) -> str:
    """`name` as its `number`-th copy: `plan.txt` -> `plan (2).txt`.

    The number goes before the extension (the last `.suffix`, or `.tar.<suffix>`); a name
    whose only dot leads (`.env`) or that has none takes it at the end. The stem is
    shortened, a character at a time, until the result fits `MAX_NAME_BYTES`.
    """
    double = _DOUBLE_SUFFIX.search(name)
    dot = double.start() if double else name.rfind(".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    tail = f" ({number}){suffix}"
    while stem and len((stem + tail).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip() + tail


def free_name(name: str, taken: Iterable[str]) -> str:
    """`name`, or its first numbered copy, that is neither one of `taken` (any case) nor a
    look-alike of one: a name that joins no existing document and is refused by no
    confusable check, whatever is already there.

    Args:
        name: A name already passed through `validate_name`.
        taken: The names beside which it would be listed (and any reserved meanwhile).
    """
    taken = list(taken)
    # Each taken name blocks at most one candidate, so one more than there are is enough.
    found = first_free(name, range(1, len(taken) + 2), taken)
    if found is None:
        raise InvalidNameError("confusable", "no free name was found for this file")
    return found


def copy_name(name: str, number: int) -> str:
    """The `number`-th candidate of `free_name`: `name` itself first, then `numbered`."""
    return name if number == 1 else numbered(name, number)


def first_free(name: str, numbers: Iterable[int], taken: Sequence[str]) -> str | None:
    """The first of `name`'s candidates `numbers` (`copy_name`) that is neither one of
    `taken` (any case) nor a look-alike of one; None if each is."""
    keys = {name_key(t) for t in taken}
    for number in numbers:
        candidate = copy_name(name, number)
        if name_key(candidate) not in keys and confusable_with(candidate, taken) is None:
            return validate_name(candidate)
    return None


# A private table built from Python's own defaults, not the host's /etc/mime.types or the
# Windows registry, so every server guesses the same type for the same name.
_TYPES = mimetypes.MimeTypes()
# Common in client file exchange but missing from Python 3.11's defaults.
for _type, _ext in (
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
    ("application/vnd.oasis.opendocument.text", ".odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", ".ods"),
    ("application/vnd.oasis.opendocument.presentation", ".odp"),
    ("application/x-7z-compressed", ".7z"),
    ("image/webp", ".webp"),
    ("text/markdown", ".md"),
):
    _TYPES.add_type(_type, _ext)

# mimetypes reports `x.csv.gz` as text/csv with encoding gzip; we serve the stored bytes as
# they are (no Content-Encoding), so the type must describe the compressed container.
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}

FALLBACK_CONTENT_TYPE = "application/octet-stream"


def guess_content_type(name: str) -> str:
    """Guess a media type from a name's extension.

    Args:
        name: A file name.

    Returns:
        The media type, or `application/octet-stream` when the extension is unknown.
    """
    # Before Python 3.13 guess_type parses its argument as a URL, so a name such as
    # `data:text/html,x` would be read as a data: URL; a leading "./" makes it a plain path.
    content_type, encoding = _TYPES.guess_type("./" + name, strict=True)
    if encoding is not None:
        return _ENCODING_TYPES.get(encoding, FALLBACK_CONTENT_TYPE)
    return content_type or FALLBACK_CONTENT_TYPE
