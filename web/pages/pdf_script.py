"""Right-to-left text for the PDF report: Arabic-script letters joined, lines in visual order.

A PDF holds glyphs where they are drawn, so the writer must do what a browser does. The
joining is `arabic_reshaper`'s (Arabic Presentation Forms, which Vazirmatn maps and a
reader's text extraction folds back to the letters); the embedding levels are
`python-bidi`'s (the Unicode Bidirectional Algorithm, bracket pairs included). Its
`get_display` leaves brackets in right-to-left runs unmirrored and tells nothing of where
each character went, so the last two steps of UAX #9 (reversing runs by level, L2, and
mirroring, L4) are done here from the levels it resolves.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Set

from arabic_reshaper import ArabicReshaper
from arabic_reshaper.ligatures import LIGATURES
from bidi import get_display
from bidi.mirror import MIRRORED


@functools.cache
def _reshaper(cmap: frozenset[int]) -> ArabicReshaper:
    # Only the ligatures the font can draw (lam-alef in Vazirmatn): the rest would come out
    # as missing glyphs.
    drawable = {
        name: all(ord(form) in cmap for form in forms if form) for name, (_, forms) in LIGATURES
    }
    return ArabicReshaper(configuration=drawable)


def shape(text: str, cmap: Set[int]) -> str:
    """`text` in logical order with each Arabic-script letter in its joined form, using only
    the ligatures in `cmap` (the font's characters); a zero-width non-joiner stays, drawn
    as nothing."""
    return str(_reshaper(frozenset(cmap)).reshape(text))


_LEVELS = re.compile(r"levels: \[(.*?)\n    \]", re.S)
_LEVEL = re.compile(r"Level\(\s*(\d+),?\s*\)")


def _levels(line: str, base_dir: str) -> list[int]:
    """The embedding level of each character, as python-bidi resolves them (per UTF-8 byte
    in its report: each character takes its first byte's)."""
    report = get_display(line, base_dir=base_dir, debug=True)
    found = _LEVELS.search(str(report))
    if found is None:
        raise RuntimeError("python-bidi reported no levels")
    per_byte = [int(level) for level in _LEVEL.findall(found.group(1))]
    levels, byte = [], 0
    for ch in line:
        levels.append(per_byte[byte])
        byte += len(ch.encode())
    return levels


def visual(line: str, *, rtl_base: bool) -> str:
    """One line of logical text in display order, left to right, for a paragraph whose
    direction is right to left when `rtl_base`."""
    if not line or (not rtl_base and not any(_rtl(c) for c in line)):
        return line  # left to right throughout: nothing moves
    base = 1 if rtl_base else 0
    levels = _levels(line, "R" if rtl_base else "L")
    # L1: white space at the end of the line goes back to the paragraph's level.
    end = len(line)
    while end and unicodedata.bidirectional(line[end - 1]) in ("WS", "S", "B"):
        end -= 1
        levels[end] = base
    # L2: reverse every run at each level from the highest down to the lowest odd one.
    order = list(range(len(line)))
    lowest_odd = min((lv for lv in levels if lv % 2), default=max(levels) + 1)
    for level in range(max(levels), lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] < level:
                i += 1
                continue
            j = i
            while j < len(order) and levels[order[j]] >= level:
                j += 1
            order[i:j] = reversed(order[i:j])
            i = j
    # L4: a mirrored glyph for brackets and the like in right-to-left runs.
    return "".join(MIRRORED.get(line[k], line[k]) if levels[k] % 2 else line[k] for k in order)


def _rtl(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL", "AN")
