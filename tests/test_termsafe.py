"""`mnemara.termsafe`: what reaches a terminal from the store, the model or a tool is inert."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemara.engine.permissions import describe_call
from mnemara.termsafe import INLINE, KEEP, inert, inert_json, one_line

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}

# (raw, as shown): the sequences from issue 10, each as a terminal would otherwise obey it
SEQUENCES = [
    ("\x1b[2J", "\\x1b[2J"),                      # clear the screen
    ("\x1b[H", "\\x1b[H"),                        # cursor home (over the TUI's header)
    ("\x1b]0;TITLE\x07", "\\x1b]0;TITLE\\x07"),   # retitle the terminal
    ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),  # write the clipboard
    ("\x1b[?1049h", "\\x1b[?1049h"),              # switch to the alternate screen
    ("ab\x08\x08XY", "ab\\x08\\x08XY"),           # backspaces overwrite what was shown
    ("a\x00b", "a\\x00b"),                        # NUL
    ("\x9b2J", "\\x9b2J"),                        # 8-bit CSI: the same as ESC [ in one character
    ("x\x7fy", "x\\x7fy"),                        # DEL
    ("safe\rrm -rf", "safe\\rrm -rf"),            # a lone CR rewrites the line from its start
    ("abc\u202edcba", "abc\\u202edcba"),          # right-to-left override: text reads reversed
    ("a\u2066b\u2069", "a\\u2066b\\u2069"),       # bidi isolate
    ("in\u200bvisible", "in\\u200bvisible"),      # zero-width space
    ("tag\U000e0041\U000e0042", "tag\\U000e0041\\U000e0042"),  # invisible tag characters
    ("line\u2028sep", "line\\u2028sep"),          # line separator
    ("lone\ud800", "lone\\ud800"),                # a lone surrogate cannot even be encoded
]


@pytest.mark.parametrize("raw,shown", SEQUENCES)
def test_every_control_sequence_is_shown_not_obeyed(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_newlines_tabs_and_joiners_are_kept_and_a_windows_line_end_is_a_line_end() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, three people joined
    assert inert(f"a\tb\nc\r\nd {family} \u0645\u200c\u0627") == f"a\tb\nc\nd {family} \u0645\u200c\u0627"
    assert inert("end\r") == "end\\r" and inert("\r\r\n") == "\\r\n"


def test_text_with_nothing_unsafe_is_the_same_object() -> None:
    text = "plain text, ümlauts, 日本語, emoji 🎉\n" * 100
    assert inert(text) is text


def test_keep_chooses_what_stays_raw() -> None:
    assert inert("a\nb\tc\u200dd", keep="") == "a\\nb\\tc\\u200dd"
    assert inert("a\nb\r\nc", keep=INLINE) == "a\\nb\\r\\nc"  # no newline kept: CR LF both show


def test_the_table_covers_every_unsafe_character_of_this_python() -> None:
    """The ranges in termsafe are written out (no scan at import); checked here against the
    running Python's Unicode data, in both directions."""
    wrong = []
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        unsafe = unicodedata.category(ch) in UNSAFE_CATEGORIES
        escaped = inert(ch, keep="") != ch
        if unsafe != escaped and not (0x13439 <= code <= 0x1343F):  # format controls reserved in 14.0
            wrong.append(f"U+{code:04X} {unicodedata.category(ch)}")
    assert not wrong, wrong[:20]


def _unsafe_left(text: str, keep: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in UNSAFE_CATEGORIES and ch not in keep]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_nothing_unsafe_survives_and_the_escapes_are_stable(text: str) -> None:
    shown = inert(text)
    assert not _unsafe_left(shown, KEEP)
    assert inert(shown) == shown  # inert twice is inert once: front ends may layer it
    assert not _unsafe_left(inert(text, keep=""), "")


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.text() | st.integers(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=8))
def test_inert_json_is_the_same_json_value_with_nothing_unsafe(value: object) -> None:
    for indent in (None, 2):
        raw = json.dumps(value, ensure_ascii=False, indent=indent)
        safe = inert_json(raw)
        assert json.loads(safe) == value
        assert not _unsafe_left(safe, "\n")


def test_inert_json_escapes_what_json_dumps_lets_through() -> None:
    raw = json.dumps({"t": "a\x7fb\x9bc\u202ed\U000e0041"}, ensure_ascii=False)
    assert "\x9b" in raw  # json.dumps escapes only C0 controls
    assert inert_json(raw) == '{"t": "a\\u007fb\\u009bc\\u202ed\\udb40\\udc41"}'


@pytest.mark.parametrize("text,limit,shown", [
    ("a\nb   c", 10, "a b c"),
    ("x\x1b[2J", 20, "x\\x1b[2J"),
    ("xx\x1b[2J", 4, "xx…"),               # never half an escape
    ("ab\u202ecd", 5, "ab…"),
    ("ab\U000e0041cd", 8, "ab…"),
    ("abcdef", 4, "abc…"),
])
def test_one_line(text: str, limit: int, shown: str) -> None:
    assert one_line(text, limit) == shown


def test_permission_prompts_use_the_same_rules() -> None:
    # A line separator or a C1 control used to reach the prompt raw (only Cc and Cf were escaped).
    shown = describe_call("Bash", {"command": "ls\u2028rm -rf ~ \x9b2K"})
    assert shown == "Bash: ls\\u2028rm -rf ~ \\x9b2K"
    assert describe_call("Bash", {"command": "echo a\u200db"}) == "Bash: echo a\\u200db"
