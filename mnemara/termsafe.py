"""Text from the store, the model or a tool, made inert before it reaches a terminal.

A terminal obeys the control characters in what it prints: ESC starts sequences that clear the
screen (`ESC[2J`), retitle the window (`ESC]0;...BEL`), write the clipboard (`ESC]52;c;...`) or
switch to the alternate screen (`ESC[?1049h`); the 8-bit CSI (U+009B) does the same in one
character; a backspace or a carriage return overwrites what was already shown; bidi overrides
and zero-width characters make a line read differently from what it holds. mnemara shows text it
did not write itself (turns, replies, tool output, notes) on a terminal only through `inert`.

The one scheme, everywhere: an *unsafe* character is one of Unicode category Cc (C0 controls,
DEL, C1 controls), Cf (format: bidi embeddings, overrides and isolates, zero-width space, BOM,
soft hyphen, tag characters), Zl / Zp (line and paragraph separators) or Cs (a lone surrogate);
it is shown as the backslash escape Python writes for it (`\\x1b`, `\\x9b`, `\\u202e`,
`\\U000e0041`; `\\n`, `\\t`, `\\r` by name), so `ESC[2J` shows as `\\x1b[2J`. Newline and tab are
kept by default, a carriage return right before a newline (a Windows line end) is dropped, and
the zero-width joiners (U+200C, U+200D) are kept, because emoji sequences and several scripts
need them and they cannot move the cursor. A caller that must show every invisible character
(the permission prompt) passes `keep=""`.

What is stored and what is sent to the model never pass through here: this is presentation only.
Stdlib only and cheap to import (one small regex; the rest compile on first use): `ask` and the
REPL import it on every start.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Categories Cc, Cf, Zl, Zp and Cs as of Unicode 14 (Python 3.11), written out so nothing scans
# Unicode at import; tests/test_termsafe.py checks the table against the running Python's
# unicodedata, so a newer Unicode cannot slip past it. (U+13439-1343F, format controls from
# Unicode 15, are in already.)
_UNSAFE_RANGES = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
KEEP = "\n\t\u200c\u200d"  # what `inert` leaves alone unless told otherwise
INLINE = "\u200c\u200d"     # `keep` for text that must stay on one line (a newline shows as \n)


def _char_class(ranges: tuple[tuple[int, int], ...], keep: str = "") -> str:
    """A regex character class (without brackets) for `ranges`, minus the characters in `keep`."""
    out = []
    for low, high in ranges:
        for cut in sorted(ord(k) for k in set(keep) if low <= ord(k) <= high):
            if low < cut:
                out.append((low, cut - 1))
            low = cut + 1
        if low <= high:
            out.append((low, high))
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in out)


@lru_cache(maxsize=16)
def _pattern(keep: str) -> re.Pattern[str]:
    """What `inert(text, keep)` replaces: the unsafe characters not kept, and a Windows line end
    when newlines are kept (compiled once per `keep`; so text with newlines and nothing unsafe
    costs one scan and no Python call per line)."""
    crlf = "\r\n|" if "\n" in keep else ""
    return re.compile(f"{crlf}[{_char_class(_UNSAFE_RANGES, keep)}]")


# In JSON text a raw newline is only ever `indent=` layout between values (never inside a string).
_UNSAFE_IN_JSON = re.compile(f"[{_char_class(_UNSAFE_RANGES, chr(10))}]")


def escape_char(ch: str) -> str:
    """`\\x1b`, `\\u202e`, `\\n`: the visible form of one character."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def inert(text: str, keep: str = KEEP) -> str:
    """`text` with every unsafe character shown as its escape (see the module docstring); text
    without one is returned as it is, at the cost of one regex scan."""
    pattern = _pattern(keep)
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda m: "\n" if m.group() == "\r\n" else escape_char(m.group()), text)


def one_line(text: str, limit: int) -> str:
    """`text` on one line of at most `limit` characters: runs of whitespace (newlines included)
    become one space, unsafe characters show as escapes, and a cut is marked with an ellipsis
    that never splits an escape in half."""
    flat = inert(" ".join(text.split()), keep=INLINE)
    if len(flat) <= limit:
        return flat
    cut = max(0, limit - 1)
    # an escape is 4 to 10 characters starting with a backslash; back up to its start if cut
    start = flat.rfind("\\", max(0, cut - 9), cut)
    if start != -1 and _escape_at(flat, start) > cut:
        cut = start
    return flat[:cut] + "…"


def _escape_at(text: str, start: int) -> int:
    """End of the escape that starts at `start` (`start` itself if none does)."""
    for form, length in (("\\x", 4), ("\\u", 6), ("\\U", 10), ("\\n", 2), ("\\t", 2), ("\\r", 2)):
        if text.startswith(form, start):
            return start + length
    return start


def inert_json(text: str) -> str:
    """JSON text (as `json.dumps(..., ensure_ascii=False)` writes it) with every unsafe
    character written as a `\\uXXXX` escape: the same JSON value, but safe to print. `json.dumps`
    escapes only the C0 controls; DEL, C1 controls and format characters would pass raw."""
    if _UNSAFE_IN_JSON.search(text) is None:
        return text

    def escaped(match: re.Match[str]) -> str:
        code = ord(match.group())
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return _UNSAFE_IN_JSON.sub(escaped, text)
