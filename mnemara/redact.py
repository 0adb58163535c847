"""Secret redaction: API keys, tokens, passwords and private keys replaced by a marker such as
`[redacted:github-token]` before text is written where it outlives the moment.

Where it applies (config `redact`, default true): memory notes, wiki pages and manual index
entries before they are written; every atom on its way into the memory index (turns included: a
turn stays verbatim in `turns.sqlite`, only its indexed copy is redacted); exports. The turn store
keeps what was typed, so the window sent to the model is never rewritten behind the user's back.

Design:
- Each kind is one precompiled pattern with a literal or keyword anchor, built so no pattern can
  backtrack quadratically (character classes that cannot overlap, bounded repeats): a 10 MB
  text costs a few linear scans.
- Patterns aim at what real credentials look like (prefixes, lengths, mixed character classes),
  so prose that mentions them ("sk-learn", "password reset email", "the AKIA prefix") is left
  alone. Assignments (`password=...`) redact the value only, so the text still says what was
  there.
- `redact` is idempotent: a marker never matches a pattern, so redacting twice changes nothing
  and an index write of already-redacted text is the same write.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

MARKER_PREFIX = "[redacted:"


def marker(kind: str) -> str:
    """The text that stands in for a secret of `kind`."""
    return f"{MARKER_PREFIX}{kind}]"


# A bare value of an assignment ends at whitespace, a quote, or punctuation that ends a field.
_BARE = r"[^\s\"'`,;<>(){}\[\]]"
# A value that is a reference to a secret rather than the secret: a shell or template variable,
# a placeholder, null-ish words, a function call, or an earlier marker.
_NOT_A_SECRET = (r"(?!\$|%\(|\{\{|\*{3}|x{3}|X{3}|\.{3}|None\b|null\b|nil\b|true\b|false\b"
                 r"|undefined\b|[A-Za-z_][\w.]{0,64}[(\[]|[\"']?\[redacted:)")
# Keys whose value is a secret in `key=value`, `key: value`, `"key": "value"` forms. Matched
# case-insensitively with no leading word boundary, so DB_PASSWORD and client_secret count
# too; a trailing letter stops it ("secretary:", "passwords:").
_KEYS = (r"(?:password|passwd|passphrase|secret(?:[_-]?(?:access[_-]?)?key)?"
         r"|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token"
         r"|client[_-]?secret|private[_-]?key)")
_KEY_ANCHORS = ("pass", "secret", "api", "access", "auth", "refresh", "client", "private")


def _value(name: str) -> str:
    """A `key = value` value: quoted, or bare up to the end of the field."""
    return (rf"(?:\"(?P<{name}q>[^\"\n]{{1,256}}+)\"|'(?P<{name}a>[^'\n]{{1,256}}+)'"
            rf"|(?P<{name}>{_BARE}{{1,256}}+))")


def _strict_value(name: str) -> str:
    """A `key: value` value: quoted, or with a digit or a symbol (in prose, "Password: reset
    it", the word after the colon is rarely the password)."""
    return (rf"(?:\"(?P<{name}q>[^\"\n]{{1,256}}+)\"|'(?P<{name}a>[^'\n]{{1,256}}+)'"
            rf"|(?=[^\s\"'`,;<>(){{}}\[\]]{{0,256}}?[0-9!@#$%^&*+=?~_/\\|-])(?P<{name}>{_BARE}{{1,256}}+))")


class _Kind:
    """One kind of secret: the literal anchors every match starts with (searched with
    `str.find`, which is far faster than a regex scan of the whole text), and the pattern
    matched at each anchor (it may look behind the anchor)."""

    def __init__(self, kind: str, anchors: tuple[str, ...], pattern: str, *,
                 groups: tuple[int | str, ...] = (0,), ignore_case: bool = False) -> None:
        self.kind = kind
        self.anchors = anchors
        self.pattern = re.compile(pattern)
        self.groups = groups  # the secret is the first of these groups that took part
        self.ignore_case = ignore_case  # anchors are lower case; searched in the lowered text

    def _span(self, m: re.Match[str]) -> tuple[int, int]:
        for group in self.groups:
            if m.start(group) != -1:
                return m.span(group)
        return 0, 0

    def spans(self, text: str, lowered: str | None) -> Iterator[tuple[str, int, int]]:
        if self.ignore_case and lowered is None:
            # Lower-casing changed the length (a rare character such as U+0130): scan instead.
            for m in self.pattern.finditer(text):
                start, end = self._span(m)
                if end > start:
                    yield self.kind, start, end
            return
        haystack = lowered if self.ignore_case else text
        for anchor in self.anchors:
            pos = haystack.find(anchor)
            while pos != -1:
                m = self.pattern.match(text, pos)
                start, end = self._span(m) if m is not None else (0, 0)
                if m is not None and end > start:
                    yield self.kind, start, end
                    pos = haystack.find(anchor, max(m.end(), pos + 1))  # no re-scan inside it
                else:
                    pos = haystack.find(anchor, pos + 1)


_KINDS: tuple[_Kind, ...] = (
    # Anthropic before the generic sk- form, so the kind names the right vendor.
    _Kind("anthropic-key", ("sk-ant-",), r"(?<![\w-])sk-ant-(?:[a-z0-9]{1,10}-)?[A-Za-z0-9_-]{20,512}+"),
    # OpenAI-style sk-... keys: 20+ token characters with upper case, lower case and a digit,
    # which words joined by hyphens ("sk-learn-...") never have all three of.
    _Kind("api-key", ("sk-",),
          r"(?<![\w-])sk-(?=[A-Za-z0-9_-]{0,512}?[A-Z])(?=[A-Za-z0-9_-]{0,512}?[a-z])"
          r"(?=[A-Za-z0-9_-]{0,512}?[0-9])[A-Za-z0-9_-]{20,512}+"),
    _Kind("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
          r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{30,255}+|github_pat_[A-Za-z0-9_]{30,255}+)"),
    _Kind("aws-access-key", ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA"),
          r"(?<![A-Za-z0-9])A[A-Z]{3}[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _Kind("slack-token", ("xox",), r"(?<![\w-])xox[abposr]-[A-Za-z0-9][A-Za-z0-9-]{9,255}+"),
    _Kind("slack-webhook", ("https://hooks.slack.com/",),
          r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,255}+"),
    # JSON Web Tokens: three base64url parts, the first two being JSON objects ("eyJ").
    _Kind("jwt", ("eyJ",),
          r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,4096}+\.eyJ[A-Za-z0-9_-]{8,8192}+\.[A-Za-z0-9_-]{8,4096}+"),
    # `Authorization: Bearer X` / `Bearer X`: the token (16+ characters with a digit) only.
    _Kind("bearer-token", ("bearer",),
          r"(?i:bearer)[ \t]{1,8}+(?P<v>(?=[A-Za-z0-9._~+/=-]{0,512}?[0-9])[A-Za-z0-9._~+/-]{16,4096}+=*)",
          groups=("v",), ignore_case=True),
    # Credentials in a URL: the password of scheme://user:password@host.
    _Kind("url-password", ("://",), r"://[^\s:/@\"'<>]{1,200}+:(?!\[redacted:)(?P<v>[^\s/@\"'<>]{1,200}+)@", groups=("v",)),
    # key = value (any value); key: value (a value that looks like one).
    _Kind("password", _KEY_ANCHORS,
          rf"(?i:{_KEYS})[\"']?[ \t]{{0,8}}+(?:=[ \t]{{0,8}}+{_NOT_A_SECRET}{_value('v')}"
          rf"|:[ \t]{{0,8}}+{_NOT_A_SECRET}{_strict_value('w')})",
          groups=("vq", "va", "v", "wq", "wa", "w"), ignore_case=True),
    # Command-line flags: --password X, --token=X, --api-key X.
    _Kind("password", ("--",),
          r"--(?i:password|passwd|token|api-key|secret|auth-token)(?:=|[ \t]{1,8}+)"
          rf"{_NOT_A_SECRET}(?P<v>(?!-){_BARE}{{1,256}}+)", groups=("v",)),
)

_PEM_BEGIN = re.compile(r"-----BEGIN (?P<label>(?:[A-Z0-9]+ ){0,4})PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END (?P<label>(?:[A-Z0-9]+ ){0,4})PRIVATE KEY-----")
# The body of a key whose END line is missing (a paste cut short): its base64 and header lines.
_PEM_BODY = re.compile(r"(?:[ \t]*+\r?\n[ \t]*+(?:[A-Za-z0-9+/=]{8,}+|[A-Za-z][A-Za-z-]*+:[^\n]*+))+")

KINDS = ("private-key", *dict.fromkeys(k.kind for k in _KINDS))


def _private_keys(text: str) -> Iterator[tuple[str, int, int]]:
    """PEM private-key blocks, BEGIN line to END line; one without an END up to the last line of
    its body. One forward pass: each BEGIN looks for the first END after it, and only if no
    other BEGIN comes first, so a text of many BEGINs costs no more than one scan."""
    pos = text.find("-----BEGIN ")
    end_at = text.find("-----END ") if pos != -1 else -1  # only ever moves forward
    while pos != -1:
        begin = _PEM_BEGIN.match(text, pos)
        if begin is None:
            pos = text.find("-----BEGIN ", pos + 1)
            continue
        after = begin.end()
        next_begin = text.find("-----BEGIN ", after)
        if end_at != -1 and end_at < after:
            end_at = text.find("-----END ", after)
        end = None
        while end_at != -1 and (next_begin == -1 or end_at < next_begin):
            end = _PEM_END.match(text, end_at)
            if end is not None and end["label"] == begin["label"]:
                break
            end = None
            end_at = text.find("-----END ", end_at + 1)
        if end is not None:
            yield "private-key", pos, end.end()
            pos = text.find("-----BEGIN ", end.end())
            continue
        body = _PEM_BODY.match(text, after)
        if body is not None:
            yield "private-key", pos, body.end()
        pos = next_begin


def _spans(text: str) -> Iterator[tuple[str, int, int]]:
    yield from _private_keys(text)
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = None  # offsets would not line up
    for kind in _KINDS:
        yield from kind.spans(text, lowered)


def find_secrets(text: str) -> list[tuple[str, int, int]]:
    """Every secret in `text` as (kind, start, end), in order and not overlapping (where two
    found spans overlap, they become one, named by the one starting first)."""
    if not text:
        return []
    out: list[tuple[str, int, int]] = []
    for kind, start, end in sorted(_spans(text), key=lambda s: (s[1], -s[2])):
        if out and start < out[-1][2]:
            if end > out[-1][2]:
                out[-1] = (out[-1][0], out[-1][1], end)
            continue
        out.append((kind, start, end))
    return out


def redact(text: str, *, keep_lines: bool = False) -> str:
    """`text` with every secret replaced by its marker; text without one is returned as is.

    `keep_lines`: a secret spanning lines (a PEM block) leaves its line breaks after the marker,
    so every later line keeps its number (note ids are `note:<file>:<line>`).

    Redacting again changes nothing: a secret glued to another one (a token right after a PEM
    block's last dashes) only stands apart once its neighbour is a marker, so passes repeat until
    none finds anything new."""
    for _ in range(4):
        secrets = find_secrets(text)
        if not secrets:
            break
        text = replace_spans(text, secrets, keep_lines=keep_lines)
    return text


def replace_spans(text: str, secrets: list[tuple[str, int, int]], *,
                  keep_lines: bool = False) -> str:
    """`text` with the spans `find_secrets` returned replaced by their markers (followed by each
    span's own line breaks when `keep_lines`)."""
    if not secrets:
        return text
    parts: list[str] = []
    last = 0
    for kind, start, end in secrets:
        parts.append(text[last:start])
        parts.append(marker(kind))
        if keep_lines:
            parts.append(_line_breaks(text[start:end]))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _line_breaks(span: str) -> str:
    """The line breaks of `span`, in order and exactly as written ("\\r\\n" stays "\\r\\n"), as
    `str.splitlines` counts them, so the lines of a redacted text number as before."""
    breaks = []
    for piece in span.splitlines(keepends=True):
        content = piece.splitlines()[0] if piece.splitlines() else ""
        breaks.append(piece[len(content):])
    return "".join(breaks)


def count_secrets(texts: Iterable[str]) -> dict[str, int]:
    """How many secrets of each kind the texts hold (for reports such as `doctor`'s)."""
    counts: dict[str, int] = {}
    for text in texts:
        for kind, _, _ in find_secrets(text):
            counts[kind] = counts.get(kind, 0) + 1
    return counts


# Keys of content blocks whose values are identifiers or signatures, never free text: redacting
# them could break the pairing of a tool call with its result, or a thinking block's signature.
STRUCTURAL_KEYS = frozenset({"type", "id", "tool_use_id", "signature", "name", "is_error"})


def redact_value(value: Any) -> Any:
    """A JSON-like value (content blocks, a payload) with every free-text string redacted;
    identifiers and signatures kept as they are. Returns the same object when nothing changed."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        items = [redact_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, dict):
        changed = {k: (v if k in STRUCTURAL_KEYS else redact_value(v)) for k, v in value.items()}
        return value if all(changed[k] is value[k] for k in value) else changed
    return value


__all__ = ["KINDS", "MARKER_PREFIX", "STRUCTURAL_KEYS", "count_secrets", "find_secrets", "marker",
           "redact", "redact_value", "replace_spans"]
