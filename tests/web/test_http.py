"""HTTP helpers: RFC 9110 ranges and validators, RFC 6266/8187 Content-Disposition."""

from __future__ import annotations

import email.message
import email.utils
import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from web.http import (
    RangeFull,
    RangeResult,
    RangeSatisfiable,
    RangeUnsatisfiable,
    content_disposition,
    content_range,
    etag_for,
    if_none_match_matches,
    if_range_matches,
    parse_range,
)

FULL = RangeFull()
UNSAT = RangeUnsatisfiable()


def part(start: int, end: int) -> RangeSatisfiable:
    return RangeSatisfiable(start, end)


# --- Range ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        # No header.
        (None, 10_000, FULL),
        (None, 0, FULL),
        # RFC 9110 §14.1.2 examples, representation of 10000 bytes.
        ("bytes=0-499", 10_000, part(0, 499)),  # the first 500 bytes
        ("bytes=500-999", 10_000, part(500, 999)),  # the second 500 bytes
        ("bytes=-500", 10_000, part(9500, 9999)),  # the final 500 bytes
        ("bytes=9500-", 10_000, part(9500, 9999)),  # the final 500 bytes
        ("bytes=0-0,-1", 10_000, FULL),  # first and last byte: multiple ranges, ignored
        ("bytes=500-600,601-999", 10_000, FULL),  # non-canonical second 500: multiple
        ("bytes=500-700,601-999", 10_000, FULL),  # overlapping: multiple
        # RFC 9110 §14.4 Content-Range example: bytes 42-1233/1234.
        ("bytes=42-1233", 1234, part(42, 1233)),
        ("bytes=42-", 1234, part(42, 1233)),
        # int-range forms.
        ("bytes=0-", 10, part(0, 9)),
        ("bytes=0-0", 10, part(0, 0)),
        ("bytes=9-9", 10, part(9, 9)),
        ("bytes=3-5", 10, part(3, 5)),
        ("bytes=5-5", 10, part(5, 5)),
        ("bytes=0-9", 10, part(0, 9)),
        # last-pos at or past the end clamps to size - 1 (§14.1.2).
        ("bytes=0-10", 10, part(0, 9)),
        ("bytes=5-1000", 10, part(5, 9)),
        ("bytes=0-99999999999999999999999999999", 10, part(0, 9)),
        ("bytes=0-" + "9" * 5000, 10, part(0, 9)),  # past int()'s 4300-digit limit
        ("bytes=007-008", 10, part(7, 8)),  # leading zeros are still 1*DIGIT
        # first-pos at or past the end: unsatisfiable (§14.1.1).
        ("bytes=10-", 10, UNSAT),
        ("bytes=10-20", 10, UNSAT),
        ("bytes=11-11", 10, UNSAT),
        ("bytes=99999999999999999999999-", 10, UNSAT),
        ("bytes=" + "9" * 5000 + "-", 10, UNSAT),
        # suffix-range.
        ("bytes=-1", 10, part(9, 9)),
        ("bytes=-3", 10, part(7, 9)),
        ("bytes=-10", 10, part(0, 9)),
        ("bytes=-11", 10, part(0, 9)),  # longer than the representation: all of it
        ("bytes=-99999999999999999999999", 10, part(0, 9)),
        ("bytes=-0", 10, UNSAT),  # zero suffix-length is never satisfiable
        ("bytes=-000", 10, UNSAT),
        # Zero-length representation: Range ignored (§14.2 MAY), whatever it says.
        ("bytes=0-", 0, FULL),
        ("bytes=0-0", 0, FULL),
        ("bytes=5-10", 0, FULL),
        ("bytes=-1", 0, FULL),
        ("bytes=-0", 0, FULL),
        # Whitespace tolerance and case-insensitive unit (§14.1).
        ("BYTES=0-4", 10, part(0, 4)),
        ("Bytes=0-4", 10, part(0, 4)),
        (" bytes = 0-4 ", 10, part(0, 4)),
        ("bytes=\t0-4\t", 10, part(0, 4)),
        # Empty list elements are skipped (§5.6.1.2).
        ("bytes=0-4,", 10, part(0, 4)),
        ("bytes=, 0-4", 10, part(0, 4)),
        ("bytes=,,0-4,,", 10, part(0, 4)),
        # Other units are ignored (§14.2 MUST).
        ("items=0-4", 10, FULL),
        ("none", 10, FULL),
        ("byte=0-4", 10, FULL),
        ("bytesx=0-4", 10, FULL),
        ("byteſ=0-4", 10, FULL),  # long s would casefold to "bytes"
        # Invalid ranges-specifiers are ignored (§14.2 MAY): 200, not 416.
        ("", 10, FULL),
        ("bytes", 10, FULL),
        ("bytes=", 10, FULL),
        ("bytes=,", 10, FULL),
        ("bytes=-", 10, FULL),
        ("bytes=5", 10, FULL),
        ("bytes=5-3", 10, FULL),  # last-pos < first-pos (§14.1.1)
        ("bytes=99999999999999999999999-99999999999999999999998", 10, FULL),
        ("bytes=a-b", 10, FULL),
        ("bytes=1-2-3", 10, FULL),
        ("bytes=--5", 10, FULL),
        ("bytes=-5-", 10, FULL),
        ("bytes=+1-2", 10, FULL),
        ("bytes=1 - 2", 10, FULL),
        ("bytes=0x1-2", 10, FULL),
        ("bytes=1_0-20", 10, FULL),  # int() would accept the underscore
        ("bytes=\u0661-\u0662", 10, FULL),  # Arabic-Indic digits: int() accepts, HTTP not
        ("bytes 0-4", 10, FULL),
        ("bytes=0-4, bytes=5-6", 10, FULL),
        ("bytes=0-4;5-6", 10, FULL),
        # Multiple ranges: ignored, whatever they are (no multipart/byteranges).
        ("bytes=0-1,5-6", 10, FULL),
        ("bytes=0-1, 0-1", 10, FULL),
        ("bytes=20-30,40-50", 10, FULL),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(1000)), 10_000, FULL),
    ],
)
def test_parse_range(header: str | None, size: int, expected: RangeResult) -> None:
    assert parse_range(header, size) == expected


def test_parse_range_rejects_negative_size() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_range("bytes=0-1", -1)


@given(
    size=st.integers(min_value=0, max_value=10**6),
    first=st.integers(min_value=0, max_value=2 * 10**6),
    last=st.none() | st.integers(min_value=0, max_value=2 * 10**6),
)
def test_int_range_model(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    result = parse_range(header, size)
    if (last is not None and last < first) or size == 0:
        assert result == FULL
    elif first >= size:
        assert result == UNSAT
    else:
        end = size - 1 if last is None else min(last, size - 1)
        assert result == part(first, end)
        assert content_range(result.start, result.end, size) == f"bytes {first}-{end}/{size}"


@given(size=st.integers(min_value=0, max_value=10**6), suffix=st.integers(0, 2 * 10**6))
def test_suffix_range_model(size: int, suffix: int) -> None:
    result = parse_range(f"bytes=-{suffix}", size)
    if size == 0:
        assert result == FULL
    elif suffix == 0:
        assert result == UNSAT
    else:
        assert result == part(max(0, size - suffix), size - 1)


@given(st.text(max_size=80), st.integers(min_value=0, max_value=10**9))
@example("bytes=0-\x00", 10)
def test_parse_range_never_fails_and_stays_in_bounds(header: str, size: int) -> None:
    result = parse_range(header, size)
    if isinstance(result, RangeSatisfiable):
        assert 0 <= result.start <= result.end < size
        assert result.length == result.end - result.start + 1


def test_range_satisfiable_checks_its_bounds() -> None:
    with pytest.raises(ValueError, match="invalid"):
        RangeSatisfiable(5, 4)
    with pytest.raises(ValueError, match="invalid"):
        RangeSatisfiable(-1, 4)


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [
        (0, 499, 10_000, "bytes 0-499/10000"),
        (42, 1233, 1234, "bytes 42-1233/1234"),  # RFC 9110 §14.4
        (21010, 47021, 47022, "bytes 21010-47021/47022"),  # RFC 9110 §14.4
        (0, 0, 1, "bytes 0-0/1"),
    ],
)
def test_content_range(start: int, end: int, size: int, expected: str) -> None:
    assert content_range(start, end, size) == expected


@pytest.mark.parametrize(
    ("start", "end", "size"), [(0, 10, 10), (5, 4, 10), (-1, 3, 10), (0, 0, 0)]
)
def test_content_range_refuses_impossible_ranges(start: int, end: int, size: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        content_range(start, end, size)


# --- Content-Disposition -------------------------------------------------------------------------

HEADER = re.compile(
    r"(attachment|inline); filename=\"([\x20\x21\x23-\x3a\x3c\x3e-\x5b\x5d-\x7e]*)\"; "
    r"filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]*)"
)


def decode(header: str) -> tuple[str, str, str]:
    """Strictly parse our Content-Disposition: (disposition, fallback, decoded filename*)."""
    match = HEADER.fullmatch(header)
    assert match is not None, header
    disposition, fallback, encoded = match.groups()
    assert re.fullmatch(r"(?:%[0-9A-F]{2}|[^%])*", encoded), "bad percent-encoding"
    return disposition, fallback, unquote(encoded, encoding="utf-8", errors="strict")


def decode_with_email(header: str) -> str:
    """Decode `filename*` with the standard library's RFC 2231 parameter support."""
    message = email.message.Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition")
    assert params is not None
    values = [value for key, value in params if key == "filename" and isinstance(value, tuple)]
    assert len(values) == 1
    return email.utils.collapse_rfc2231_value(values[0])


NAMES = [
    ("report.pdf", "report.pdf"),
    ('say "hi".txt', "say _hi_.txt"),
    ("back\\slash.txt", "back_slash.txt"),
    ('evil"; filename="evil.exe', "evil__ filename__evil.exe"),
    ("a; filename*=UTF-8''evil.exe", "a_ filename*_UTF-8''evil.exe"),
    ("line\r\nSet-Cookie: a=b", "line__Set-Cookie: a_b"),
    ("nul\x00byte", "nul_byte"),
    ("invoice\u202efdp.exe", "invoice_fdp.exe"),
    ("100% done %41.pdf", "100_ done _41.pdf"),
    ("📄 invoice.pdf", "_ invoice.pdf"),
    ("قرارداد.pdf", "_______.pdf"),
    ("請求書.xlsx", "___.xlsx"),
    ("Café.txt", "Caf_.txt"),
    ("", "download"),
    ("日本語", "___"),
    ("..", "download"),
    (" ", "download"),
    ("a" * 255, "a" * 255),
    ("😀" * 63 + "abc", "_" * 63 + "abc"),
    ("x" * 5000, "x" * 5000),
]


@pytest.mark.parametrize(("name", "fallback"), NAMES)
def test_content_disposition(name: str, fallback: str) -> None:
    header = content_disposition(name)
    assert header.isascii()
    assert header.isprintable()
    disposition, got_fallback, decoded = decode(header)
    assert disposition == "attachment"
    assert got_fallback == fallback
    assert decoded == name
    assert decode_with_email(header) == name


def test_content_disposition_exact_forms() -> None:
    assert content_disposition("report.pdf") == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert content_disposition("Café €.pdf", "inline") == (
        "inline; filename=\"Caf_ _.pdf\"; filename*=UTF-8''Caf%C3%A9%20%E2%82%AC.pdf"
    )
    # RFC 8187 §3.2.1 attr-char punctuation is sent as is; everything else is encoded.
    assert content_disposition("a!#$&+-.^_`|~b").endswith("filename*=UTF-8''a!#$&+-.^_`|~b")
    assert content_disposition("a'b*c(d)e;f").endswith("filename*=UTF-8''a%27b%2Ac%28d%29e%3Bf")


def test_content_disposition_replaces_lone_surrogates() -> None:
    header = content_disposition("bad\ud800.txt")
    assert decode(header)[2] == "bad\ufffd.txt"


def test_content_disposition_refuses_other_dispositions() -> None:
    with pytest.raises(ValueError, match="disposition"):
        content_disposition("a.txt", "attachment\r\nX: y")  # type: ignore[arg-type]


@given(st.text(), st.sampled_from(["attachment", "inline"]))
@example("\r\n\"\\;%'*", "attachment")
@example("\u202e\u2028\x85\x00", "inline")
def test_content_disposition_is_safe_ascii_and_round_trips(name: str, disposition: str) -> None:
    header = content_disposition(name, "inline" if disposition == "inline" else "attachment")
    assert all(0x20 <= ord(ch) <= 0x7E for ch in header)
    assert "\r" not in header
    assert "\n" not in header
    # Exactly the three parts we wrote: a name cannot add or close one.
    assert header.count(";") == 2
    assert header.count('"') == 2
    assert header.count("=") == 2
    got_disposition, fallback, decoded = decode(header)
    assert got_disposition == disposition
    assert decoded == name
    assert fallback
    assert decode_with_email(header) == name


# --- Entity tags ---------------------------------------------------------------------------------

ETAG = etag_for("7c4f1f1e-0d5e-4a53-9d7c-8a2b5f0c1d11", "ab" * 32)
OPAQUE = ETAG[1:-1]


def test_etag_is_strong_quoted_and_opaque() -> None:
    assert re.fullmatch(r'"[0-9a-f]{32}"', ETAG)
    assert "7c4f1f1e" not in ETAG
    assert "abab" not in ETAG
    assert etag_for("7c4f1f1e-0d5e-4a53-9d7c-8a2b5f0c1d11", "ab" * 32) == ETAG


def test_etag_depends_on_version_and_digest() -> None:
    assert etag_for("v1", "ab" * 32) != etag_for("v2", "ab" * 32)
    assert etag_for("v1", "ab" * 32) != etag_for("v1", "cd" * 32)
    # The separator keeps the two inputs apart.
    assert etag_for("v1a", "b") != etag_for("v1", "ab")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("*", True),
        (" * ", True),
        (ETAG, True),
        (f" {ETAG} ", True),
        (f"W/{ETAG}", True),  # weak comparison (§8.8.3.2)
        (f'"other", {ETAG}', True),
        (f'"a", "b",{ETAG},"c"', True),
        (f'W/"a",\tW/{ETAG}', True),
        (f", ,{ETAG},", True),  # empty list elements (§5.6.1.2)
        ('"other"', False),
        ('"a", "b"', False),
        (f"w/{ETAG}", False),  # W/ is case-sensitive (%s"W/")
        (OPAQUE, False),  # unquoted
        (f'"{OPAQUE}', False),
        (f'{ETAG} "x"', False),  # missing comma: malformed, so no match
        (f"{ETAG}, *", False),  # "*" is only valid alone
        (f"{ETAG}, garbage", False),
        (f'"{OPAQUE} "', False),  # a space is not etagc
        (f'{ETAG[:-2]}\x00"', False),
    ],
)
def test_if_none_match(header: str | None, expected: bool) -> None:
    assert if_none_match_matches(header, ETAG) is expected


def test_if_none_match_against_a_weak_current_tag() -> None:
    assert if_none_match_matches('"x"', 'W/"x"')
    assert if_none_match_matches('W/"x"', 'W/"x"')


def test_if_none_match_accepts_obs_text_without_matching() -> None:
    assert not if_none_match_matches('"caf\xe9"', ETAG)
    assert if_none_match_matches('"caf\xe9"', '"caf\xe9"')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (ETAG, True),
        (f" {ETAG}\t", True),
        (f"W/{ETAG}", False),  # strong comparison only (§13.1.5)
        ('"other"', False),
        (f"{ETAG}, {ETAG}", False),  # If-Range takes one validator, not a list
        ("*", False),
        ("", False),
        (OPAQUE, False),
        ("Sun, 06 Nov 1994 08:49:37 GMT", False),  # a date never matches: no Last-Modified
        ("Sunday, 06-Nov-94 08:49:37 GMT", False),
    ],
)
def test_if_range(header: str, expected: bool) -> None:
    assert if_range_matches(header, ETAG) is expected


def test_if_range_never_matches_a_weak_current_tag() -> None:
    assert not if_range_matches('"x"', 'W/"x"')
    assert not if_range_matches('W/"x"', 'W/"x"')


@pytest.mark.parametrize("bad", ["", "x", '"a"b"', 'W/"x" '])
def test_validators_refuse_a_malformed_current_tag(bad: str) -> None:
    with pytest.raises(ValueError, match="entity-tag"):
        if_none_match_matches('"x"', bad)
    with pytest.raises(ValueError, match="entity-tag"):
        if_range_matches('"x"', bad)


@given(st.text(max_size=60))
def test_validators_never_fail_on_any_header(header: str) -> None:
    assert isinstance(if_none_match_matches(header, ETAG), bool)
    assert isinstance(if_range_matches(header, ETAG), bool)
