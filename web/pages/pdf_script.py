"""Right-to-left text for the PDF report: Arabic-script letters joined, lines in visual order.

A PDF holds glyphs where they are drawn, so the writer must do what a browser does: give
each Arabic or Persian letter its joined form, and lay out every line in display order.
reportlab does both only with its optional `uharfbuzz` and `rlbidi` packages, which this
project does not install; the text here is a single paragraph with no explicit embeddings
(sentences are built with `isolate=False`), so the Unicode Bidirectional Algorithm
(UAX #9) reduces to its weak-type, neutral and implicit rules (W1–W7, N1–N2, I1–I2) and the
reordering of one line (L1, L2, L4), with the classes from `unicodedata`. Joined letters
are written as Arabic Presentation Forms, which the shipped Vazirmatn font maps and which
a reader's text extraction folds back to the letters (NFKC).
"""

from __future__ import annotations

import unicodedata

# Per letter: its isolated, final, initial and medial presentation forms; a letter with two
# forms joins only to the letter before it (right-joining).
_FORMS: dict[str, tuple[str, ...]] = {}


def _block(letters: str, first: int, counts: str) -> None:
    code = first
    for letter, count in zip(letters, counts, strict=True):
        _FORMS[letter] = tuple(chr(code + i) for i in range(int(count)))
        code += int(count)


# U+0621…U+064A in the order of the Presentation Forms-B block (U+FE80…).
_block("ءآأؤإئابةتثجحخدذرزسشصضطظعغ", 0xFE80, "12222424244444222244444444")
_block("فقكلمنهوىي", 0xFED1, "4444444224")
# Persian letters, from Presentation Forms-A.
_FORMS.update(
    {
        "پ": ("\ufb56", "\ufb57", "\ufb58", "\ufb59"),
        "چ": ("\ufb7a", "\ufb7b", "\ufb7c", "\ufb7d"),
        "ژ": ("\ufb8a", "\ufb8b"),
        "ک": ("\ufb8e", "\ufb8f", "\ufb90", "\ufb91"),
        "گ": ("\ufb92", "\ufb93", "\ufb94", "\ufb95"),
        "ی": ("\ufbfc", "\ufbfd", "\ufbfe", "\ufbff"),
        "ۀ": ("\ufba4", "\ufba5"),
    }
)
# Lam followed by an alef is one obligatory ligature: isolated and final forms.
_LAM_ALEF = {
    "آ": ("\ufef5", "\ufef6"),
    "أ": ("\ufef7", "\ufef8"),
    "إ": ("\ufef9", "\ufefa"),
    "ا": ("\ufefb", "\ufefc"),
}
_TATWEEL = "\u0640"
_INVISIBLE = {"\u200c", "\u200d"}  # joiners decide joining, then draw nothing


def _joins_forward(ch: str) -> bool:
    return ch == _TATWEEL or len(_FORMS.get(ch, ())) == 4


def _joins_back(ch: str) -> bool:
    return ch == _TATWEEL or len(_FORMS.get(ch, ())) >= 2


def _transparent(ch: str) -> bool:
    return unicodedata.category(ch) == "Mn"


def shape(text: str) -> str:
    """`text` in logical order with each Arabic-script letter in its joined form."""
    chars = list(text)

    def neighbour(i: int, step: int) -> str:
        i += step
        while 0 <= i < len(chars) and _transparent(chars[i]):
            i += step
        return chars[i] if 0 <= i < len(chars) else ""

    out: list[str] = []
    skip = False
    for i, ch in enumerate(chars):
        if skip:
            skip = False
            continue
        forms = _FORMS.get(ch)
        if forms is None:
            if ch not in _INVISIBLE:
                out.append(ch)
            continue
        before = neighbour(i, -1)
        after = neighbour(i, 1)
        back = _joins_back(ch) and _joins_forward(before)
        if ch == "ل" and after in _LAM_ALEF and chars[i + 1] == after:
            out.append(_LAM_ALEF[after][1 if back else 0])
            skip = True
            continue
        forward = _joins_forward(ch) and _joins_back(after)
        index = {(False, False): 0, (True, False): 1, (False, True): 2, (True, True): 3}
        out.append(forms[min(index[back, forward], len(forms) - 1)])
    return "".join(out)


_MIRROR = dict(zip("()[]{}<>«»‹›", ")(][}{><»«›‹", strict=True))
_STRONG = {"L", "R", "AL"}
_NEUTRAL = {"B", "S", "WS", "ON"}
# Explicit embeddings, overrides and isolates: not expected in this text; dropped (X9).
_REMOVED = {"BN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def rtl(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL")


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _strong(t: str) -> str:
    return "L" if t == "L" else "R" if t in ("R", "EN", "AN") else ""


def _brackets(chars: list[str], types: list[str], edge: str) -> None:
    """N0: a pair of brackets takes one direction, from what it holds or else from what
    comes before it, so "name (version 3)" keeps its parentheses around the number."""
    pairs: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(chars):
        if types[i] != "ON":
            continue
        if ch in _PAIRS:
            stack.append((_PAIRS[ch], i))
        elif stack and ch in _PAIRS.values():
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == ch:
                    pairs.append((stack[depth][1], i))
                    del stack[depth:]
                    break
    for start, end in sorted(pairs):
        inside = {_strong(t) for t in types[start + 1 : end]} - {""}
        if not inside:
            continue
        if edge in inside:
            chosen = edge
        else:
            context = next((_strong(t) for t in reversed(types[:start]) if _strong(t)), edge)
            chosen = context if context in inside else edge
        types[start] = types[end] = chosen


def visual(line: str, *, rtl_base: bool) -> str:
    """One line of logical text in display order, left to right, for a paragraph whose
    direction is right to left when `rtl_base`."""
    chars = [c for c in line if unicodedata.bidirectional(c) not in _REMOVED]
    if not chars:
        return ""
    if not rtl_base and not any(unicodedata.bidirectional(c) in ("R", "AL", "AN") for c in chars):
        return "".join(chars)  # left to right throughout: nothing moves
    types = [unicodedata.bidirectional(c) or "L" for c in chars]
    base = 1 if rtl_base else 0
    edge = "R" if base else "L"
    n = len(types)
    # W1: a combining mark takes the type of what it combines with.
    for i in range(n):
        if types[i] == "NSM":
            types[i] = types[i - 1] if i else edge
    # W2, W3: European digits after Arabic letters are Arabic numbers; AL is R.
    last = edge
    for i in range(n):
        t = types[i]
        if t in _STRONG:
            last = t
        elif t == "EN" and last == "AL":
            types[i] = "AN"
    types = ["R" if t == "AL" else t for t in types]
    # W4: one separator between two numbers of a kind joins them.
    for i in range(1, n - 1):
        t, a, b = types[i], types[i - 1], types[i + 1]
        if (t == "ES" and a == b == "EN") or (t == "CS" and a == b and a in ("EN", "AN")):
            types[i] = a
    # W5: terminators (%, currency) next to European digits are digits.
    for i in range(n):
        if types[i] == "ET":
            j = i
            while j < n and types[j] == "ET":
                j += 1
            if (i and types[i - 1] == "EN") or (j < n and types[j] == "EN"):
                for k in range(i, j):
                    types[k] = "EN"
    # W6, W7.
    types = ["ON" if t in ("ES", "ET", "CS") else t for t in types]
    last = edge
    for i in range(n):
        if types[i] in ("L", "R"):
            last = types[i]
        elif types[i] == "EN" and last == "L":
            types[i] = "L"
    _brackets(chars, types, edge)
    # N1, N2: neutrals between two of one direction take it, else the paragraph's.
    i = 0
    while i < n:
        if types[i] not in _NEUTRAL:
            i += 1
            continue
        j = i
        while j < n and types[j] in _NEUTRAL:
            j += 1
        before = edge if i == 0 else ("R" if types[i - 1] in ("R", "EN", "AN") else "L")
        after = edge if j == n else ("R" if types[j] in ("R", "EN", "AN") else "L")
        fill = before if before == after else edge
        for k in range(i, j):
            types[k] = fill
        i = j
    # I1, I2: implicit levels.
    levels = []
    for t in types:
        if base == 0:
            levels.append(1 if t == "R" else 2 if t in ("AN", "EN") else 0)
        else:
            levels.append(2 if t in ("L", "EN", "AN") else 1)
    # L1: trailing white space goes back to the paragraph's level.
    k = n
    while k and unicodedata.bidirectional(chars[k - 1]) in ("WS", "S", "B"):
        k -= 1
        levels[k] = base
    # L2: reverse every run at each level from the highest down to the lowest odd one.
    order = list(range(n))
    top = max(levels)
    lowest_odd = min((lv for lv in levels if lv % 2), default=top + 1)
    for level in range(top, lowest_odd - 1, -1):
        i = 0
        while i < n:
            if levels[order[i]] < level:
                i += 1
                continue
            j = i
            while j < n and levels[order[j]] >= level:
                j += 1
            order[i:j] = reversed(order[i:j])
            i = j
    # L4: mirrored glyphs in right-to-left runs.
    return "".join(_MIRROR.get(chars[k], chars[k]) if levels[k] % 2 else chars[k] for k in order)
