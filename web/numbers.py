"""Integers read from a query, a path, a header or a form: one parser for all of them.

Only ASCII digits count. `str.isdigit()` and `int()` also accept other scripts' digits and
signs (`int("١") == 1`, `"²".isdigit()` is true but `int("²")` raises), so a check with one
and a conversion with the other either fails with a server error or quietly reads a number
the sender never wrote. Values are bounded by the column they are compared with: a number
past a 32- or 64-bit column would fail in the database driver (a 500) rather than match
nothing (OWASP ASVS 5.1.3, validate against an allow list).
"""

from __future__ import annotations

import re

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_int(raw: str | None, *, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
    """The integer spelled by `raw` in ASCII decimal digits, if within [minimum, maximum].

    Returns None for None, an empty string, a sign, spaces, non-ASCII digits, or a value out
    of bounds; the caller picks the answer (400, 404, 422). Any number of leading zeros is
    allowed, and a numeral of any length is refused without converting it (CVE-2020-10735).
    """
    if raw is None or _ASCII_DIGITS.fullmatch(raw) is None:
        return None
    significant = raw.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if minimum <= value <= maximum else None
