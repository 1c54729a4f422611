"""Small, pure HTTP helpers: byte ranges, Content-Disposition and entity tags.

Section numbers refer to RFC 9110 (HTTP Semantics) unless another RFC is named.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import quote

# --- Range (§14) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RangeFull:
    """Serve the whole representation with 200: no Range, or one we ignore."""


@dataclass(frozen=True, slots=True)
class RangeSatisfiable:
    """Serve bytes `start`..`end` with 206; both ends inclusive, as in Content-Range."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid byte range {self.start}-{self.end}")

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class RangeUnsatisfiable:
    """Answer 416 with `Content-Range: bytes */<size>` (§15.5.17)."""


RangeResult: TypeAlias = RangeFull | RangeSatisfiable | RangeUnsatisfiable

# range-spec of §14.1.1 for the bytes unit: int-range `first-[last]` or suffix-range `-n`.
# [0-9] and not \d: \d (like str.isdigit and int()) also accepts non-ASCII digits.
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_OWS = " \t"


def _digits_key(digits: str) -> tuple[int, str]:
    """Order-preserving key of a decimal string, without converting it to an int."""
    stripped = digits.lstrip("0")
    return (len(stripped), stripped)


def _clamped(digits: str, limit: int) -> int:
    """Return `min(int(digits), limit)` for a string of ASCII digits of any length.

    §14.1.2: "recipients MUST anticipate potentially large decimal numerals and prevent
    parsing errors due to integer conversion overflows". int() refuses over 4300 digits
    (CVE-2020-10735) and a header can hold more, so a longer numeral than `limit` is `limit`.
    """
    stripped = digits.lstrip("0")
    if len(stripped) > len(str(limit)):
        return limit
    return min(int(stripped or "0"), limit)


def parse_range(header: str | None, size: int) -> RangeResult:
    """Interpret a Range header for a representation of `size` bytes (§14.1.2, §14.2).

    Only a single byte range is served. Anything the RFC lets or makes a server ignore
    yields `RangeFull`, which is always a correct answer (a 200 with the whole body).

    Args:
        header: The Range field value, or None when absent.
        size: Length of the selected representation in bytes.

    Returns:
        `RangeFull` (200), `RangeSatisfiable` (206) or `RangeUnsatisfiable` (416).

    Raises:
        ValueError: If `size` is negative.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    if header is None:
        return RangeFull()
    unit, equals, range_set = header.partition("=")
    # §14.2: "An origin server MUST ignore a Range header field that contains a range unit it
    # does not understand"; §14.1: range units compare case-insensitively.
    unit = unit.strip(_OWS)
    if not equals or not unit.isascii() or unit.lower() != "bytes":
        return RangeFull()
    # range-set = 1#range-spec; §5.6.1.2 makes recipients skip empty list elements.
    specs = [spec.strip(_OWS) for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]
    # More than one range would need multipart/byteranges (§14.6), which we do not produce.
    # Ignoring the field is allowed (§14.2: "A server MAY ignore the Range header field") and
    # shuts out range amplification, where many small or overlapping ranges make one small
    # request cost many times the file in work and bandwidth (§17.15). An empty range-set is
    # invalid, and §14.2 lets a server ignore an invalid ranges-specifier.
    if len(specs) != 1:
        return RangeFull()
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return RangeFull()
    first, last = match.groups()
    if not first and not last:
        return RangeFull()  # a bare "-" is no range-spec at all
    # §14.1.1: "An int-range is invalid if the last-pos value is present and less than the
    # first-pos" -- and an invalid ranges-specifier may be ignored (§14.2).
    if first and last and _digits_key(last) < _digits_key(first):
        return RangeFull()
    # §14.2: "A server that supports range requests MAY ignore a Range header field when the
    # selected representation has no content". We take that permission for every range on an
    # empty body: the one satisfiable form there, a non-zero suffix (§14.1.2), selects zero
    # bytes, which the Content-Range grammar (§14.4) cannot express, and `bytes=0-` on an
    # empty file (a common probe) deserves the empty 200, not a 416.
    if size == 0:
        return RangeFull()
    if not first:
        # suffix-range: the last n bytes, or all of them when n >= size; a zero suffix-length
        # is never satisfiable (§14.1.2).
        suffix = _clamped(last, size)
        if suffix == 0:
            return RangeUnsatisfiable()
        return RangeSatisfiable(size - suffix, size - 1)
    start = _clamped(first, size)
    # §14.1.2: an int-range is satisfiable only if first-pos < the representation's length.
    if start >= size:
        return RangeUnsatisfiable()
    # §14.1.2: a missing last-pos, or one at or past the end, means "to the last byte".
    end = _clamped(last, size - 1) if last else size - 1
    return RangeSatisfiable(start, end)


def content_range(start: int, end_inclusive: int, size: int) -> str:
    """Return the Content-Range value of a 206 response (§14.4), e.g. `bytes 0-499/1234`.

    Args:
        start: First byte position.
        end_inclusive: Last byte position, inclusive.
        size: Complete length of the representation.

    Raises:
        ValueError: If the range does not lie within the representation.
    """
    if not 0 <= start <= end_inclusive < size:
        raise ValueError(f"byte range {start}-{end_inclusive} does not fit in {size} bytes")
    return f"bytes {start}-{end_inclusive}/{size}"


# --- Content-Disposition (RFC 6266, RFC 8187) --------------------------------------------------

# Printable ASCII that may stand for itself in the quoted `filename` fallback. Left out:
# '"' and '\' (quoted-string delimiters; RFC 6266 Appendix D warns that UAs do not implement
# backslash escapes), ';' and '=' (naive parsers split parameters on them, even inside
# quotes, which would let a name smuggle in a `filename*=` of its own) and '%' (Appendix D:
# some UAs percent-decode `filename`). Everything else, control and non-ASCII characters
# included, becomes '_'.
_FALLBACK_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset('"\\;=%')
# attr-char of RFC 8187 §3.2.1 besides ALPHA and DIGIT; quote() escapes all the rest.
_ATTR_CHAR_PUNCTUATION = "!#$&+-.^_`|~"
_SURROGATE = re.compile("[\ud800-\udfff]")

Disposition = Literal["attachment", "inline"]


def _ascii_fallback(filename: str) -> str:
    fallback = "".join(ch if ch in _FALLBACK_SAFE else "_" for ch in filename)
    # A fallback of nothing, or of only dots and spaces, names no file a browser can save.
    if fallback.strip(" .") == "":
        return "download"
    return fallback


def content_disposition(filename: str, disposition: Disposition = "attachment") -> str:
    """Build a Content-Disposition value that carries any Unicode file name safely.

    The result is `<disposition>; filename="<ASCII fallback>"; filename*=UTF-8''<pct-encoded>`:
    RFC 6266 §4.3 has recipients prefer `filename*` (RFC 8187 ext-value); `filename` is the
    fallback for UAs without RFC 8187 and comes first, as Appendix D advises, because some
    parsers mishandle the other order. The value is always
    printable ASCII with no quote, semicolon or equals sign beyond the ones delimiting the
    two parameters, so no name can end the header or add a parameter.

    Args:
        filename: The file name to offer; lone surrogates are sent as U+FFFD.
        disposition: `attachment` (save) or `inline` (display).

    Raises:
        ValueError: If `disposition` is neither `attachment` nor `inline`.
    """
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"unsupported disposition {disposition!r}")
    # A lone surrogate has no UTF-8 form; U+FFFD keeps the header well-formed.
    filename = _SURROGATE.sub("\ufffd", filename)
    encoded = quote(filename.encode("utf-8"), safe=_ATTR_CHAR_PUNCTUATION)
    return f"{disposition}; filename=\"{_ascii_fallback(filename)}\"; filename*=UTF-8''{encoded}"


# --- Entity tags (§8.8.3, §13.1.2, §13.1.5) ----------------------------------------------------

# entity-tag = [ weak ] opaque-tag; weak = %s"W/" (case-sensitive); opaque-tag = DQUOTE *etagc
# DQUOTE; etagc = %x21 / %x23-7E / obs-text. Starlette decodes field values as Latin-1, so
# obs-text (%x80-FF) arrives as U+0080..U+00FF.
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
# What may follow an entity-tag in a list (§5.6.1): OWS, then commas (empty elements are
# allowed) or the end of the value.
_AFTER_TAG = re.compile(r"[ \t]*(?:,[ \t,]*|\Z)")


def etag_for(version_id: str, sha256_hex: str) -> str:
    """Return the strong ETag of one stored version's content.

    A version's bytes never change, so a strong validator is honest (§8.8.1). The tag is a
    hash of both inputs rather than either one: it stays opaque, leaking neither the internal
    version id nor the digest of the plaintext.

    Args:
        version_id: The version's id.
        sha256_hex: Hex SHA-256 of the version's plaintext.

    Returns:
        A quoted strong entity-tag, e.g. `"3f5a..."`.
    """
    digest = hashlib.sha256(f"clientvault-etag-v1\x00{version_id}\x00{sha256_hex}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def _parse_tag(etag: str) -> tuple[bool, str]:
    match = _ENTITY_TAG.fullmatch(etag)
    if match is None:
        raise ValueError(f"not an entity-tag: {etag!r}")
    return match.group(1) is not None, match.group(2)


def _parse_tag_list(value: str) -> list[tuple[bool, str]] | None:
    """Parse `#entity-tag` into (weak, opaque) pairs; None if the value is malformed."""
    tags: list[tuple[bool, str]] = []
    pos = len(value) - len(value.lstrip(" \t,"))  # leading OWS and empty elements
    while pos < len(value):
        tag = _ENTITY_TAG.match(value, pos)
        if tag is None:
            return None
        tags.append((tag.group(1) is not None, tag.group(2)))
        after = _AFTER_TAG.match(value, tag.end())
        if after is None:
            return None
        pos = after.end()
    return tags


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """Tell whether If-None-Match matches the current representation (§13.1.2).

    For GET and HEAD a match means "answer 304 Not Modified". Comparison is weak (§8.8.3.2):
    `W/"x"` matches `"x"`. A malformed value matches nothing, so the client gets the full
    response, which is always safe; a false match would leave it with a stale copy.

    Args:
        header: The If-None-Match field value, or None when absent.
        etag: The current entity-tag, as from `etag_for`.

    Returns:
        True if the field is `*` or lists a tag that weakly matches `etag`.
    """
    if header is None:
        return False
    _, ours = _parse_tag(etag)
    # "*" matches any current representation, and this is only asked when one exists.
    if header.strip(_OWS) == "*":
        return True
    tags = _parse_tag_list(header)
    if tags is None:
        return False
    return any(opaque == ours for _, opaque in tags)


def if_range_matches(header: str, etag: str) -> bool:
    """Tell whether an If-Range validator still names the current representation (§13.1.5).

    Only then may the Range be honoured; otherwise the whole representation is sent. The
    comparison is strong (§8.8.3.2): weak tags never match. An HTTP-date never matches either:
    a date validator needs a strong Last-Modified, and we send no Last-Modified at all.

    Args:
        header: The If-Range field value (present: an absent If-Range imposes no condition).
        etag: The current entity-tag, as from `etag_for`.

    Returns:
        True if the field is a strong entity-tag equal to a strong `etag`.
    """
    our_weak, ours = _parse_tag(etag)
    theirs = _ENTITY_TAG.fullmatch(header.strip(_OWS))
    if theirs is None or our_weak or theirs.group(1) is not None:
        return False
    return theirs.group(2) == ours
