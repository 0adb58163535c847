"""A light entity extractor: people, projects, files, hosts and tags named in a piece of text.

No model call and no dictionary: a handful of patterns that are right far more often than not on
what a chat's memory holds (notes, wiki pages, turns). The graph links atoms through the entities
they share, replay groups atoms by them, and recall lifts atoms linked to an entity the message
names, so a miss costs a link, never a wrong answer. Names are normalised so the same entity
written twice is one node: case-folded for people, projects, hosts and tags; files keep their case
(`Makefile` and `makefile` are different files) but lose a leading `./` and trailing punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("person", "project", "file", "host", "tag")

_FILE_EXT = ("py|pyi|js|jsx|ts|tsx|mjs|cjs|md|rst|txt|json|jsonl|yaml|yml|toml|ini|cfg|conf|env|"
             "sh|bash|zsh|go|rs|c|h|cc|cpp|hpp|java|kt|rb|php|cs|swift|sql|html|css|scss|lock|"
             "csv|tsv|xml|proto|tf|dockerfile|mk|log|sqlite|db|ipynb|lua|pl|r|scala|vue|svelte")
# A path with a directory part (src/app.py, /etc/hosts, ./run.sh, ~/.bashrc) or a bare file name
# with a known extension (server.py). Not preceded by ':' or '/' so URLs are not cut into paths.
_PATH = re.compile(
    r"(?<![\w:/.@~-])(?:~/|\./|\.\./|/)(?:[\w.-]+/)*[\w.-]*\w"
    r"|(?<![\w:/.@~-])(?:[\w.-]+/)+[\w.-]*\w"
    r"|(?<![\w/.@-])[\w-]+(?:\.[\w-]+)*\.(?:" + _FILE_EXT + r")\b", re.I)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
# A dotted name whose last label is a common top-level or internal domain.
_DOMAIN = re.compile(
    r"(?<![\w.@/-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:com|org|net|io|dev|app|cloud|internal|local|lan|corp|prod|stage|staging|test|example|"
    r"ai|co|uk|de|fr|eu|us|edu|gov)(?![\w.-])", re.I)
# "host stg-7", "server db01", "on box web-3", "ssh deploy@stg-7".
_HOST_CUE = re.compile(r"\b(?:host|hostname|server|machine|box|node|vm)\s+[`'\"]?([a-z0-9][\w.-]*\w)",
                       re.I)
_SSH = re.compile(r"\bssh\s+(?:-\S+\s+)*(?:[\w.-]+@)?([a-z0-9][\w.-]*\w)", re.I)
_PROJECT_CUE = re.compile(
    r"\b(?:project|repo|repository|codebase|package|library|service)\s+[`'\"]?"
    r"([A-Za-z0-9][\w.-]*\w|[A-Za-z0-9])"
    r"|\bthe\s+([A-Z][\w.-]*\w)\s+(?:project|repo|repository|codebase|service)\b")
_TAG = re.compile(r"(?<![\w&#/])#([A-Za-z][\w-]{1,49})\b")
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z][\w-]{1,38})\b(?!\.[a-z])")
_NAME = r"([A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?(?:\s+[A-Z][a-z]+)?)"
# A speaker label at a line start ("Caroline: ..."), or a capitalised name next to a word that
# says a person is meant ("asked Ada", "Ada said", "Ada's").
_SPEAKER = re.compile(r"^\s*" + _NAME + r"\s*:", re.M)
_PERSON_BEFORE = re.compile(
    r"\b(?:with|by|from|asked|told|ask|tell|thanks|thank|cc|met|meet|called|call|emailed|email|"
    r"pinged|ping|per|user|colleague|manager|friend|wife|husband|sister|brother|mother|father|"
    r"mom|dad|son|daughter|boss|teammate|dr\.?|mr\.?|mrs\.?|ms\.?)\s+" + _NAME + r"\b")
_PERSON_AFTER = re.compile(
    _NAME + r"(?:'s\b|\s+(?:said|says|asked|asks|wants|wanted|thinks|thought|mentioned|prefers|"
    r"preferred|told|wrote|likes|liked|loves|reported|suggested|agreed|decided|owns|needs)\b)")
# Capitalised words that are not names even where a cue stands next to them.
_NOT_NAMES = frozenset("""
i i'm i've i'll i'd you he she it we they me him her us them my your his its our their this that
these those the a an and or but if then when where what who why how which there here yes no not
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december today tomorrow yesterday tonight morning evening
python javascript typescript linux macos windows github gitlab docker claude sql json
api cli ui tui repl ok okay hello hi hey thanks please sorry note see also wow
""".split())


@dataclass(frozen=True, order=True)
class Entity:
    """One entity named in a text: `kind` is one of KINDS, `name` its normalised spelling."""

    kind: str
    name: str

    @property
    def node_id(self) -> str:
        """The id of this entity's node in the graph (`person:ada`, `file:src/app.py`)."""
        return f"{self.kind}:{self.name}"


def extract_entities(text: str) -> list[Entity]:
    """The entities `text` names, each once, in the order they first appear."""
    found: dict[Entity, int] = {}

    def add(kind: str, raw: str, at: int) -> None:
        name = normalise(kind, raw)
        if name:
            found.setdefault(Entity(kind, name), at)

    urls = [m.span() for m in _URL.finditer(text)]
    for m in _URL.finditer(text):
        host = re.match(r"[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([^/:?#\s]+)", m.group(), re.I)
        if host:
            add("host", host.group(1), m.start())

    def in_url(pos: int) -> bool:
        return any(a <= pos < b for a, b in urls)

    hosts_at: set[int] = set()
    for rx in (_IPV4, _DOMAIN):
        for m in rx.finditer(text):
            if not in_url(m.start()):
                add("host", m.group(), m.start())
                hosts_at.add(m.start())
    for rx in (_HOST_CUE, _SSH):
        for m in rx.finditer(text):
            if not in_url(m.start(1)) and not _FILE_NAME.fullmatch(m.group(1)):
                add("host", m.group(1), m.start(1))
                hosts_at.add(m.start(1))
    for m in _PATH.finditer(text):
        if in_url(m.start()) or m.start() in hosts_at:
            continue
        token = m.group()
        if "/" in token and not _looks_like_path(token):
            continue
        add("file", token, m.start())
    for m in _PROJECT_CUE.finditer(text):
        raw = m.group(1) or m.group(2)
        if raw.casefold() not in _NOT_NAMES:
            add("project", raw, m.start())
    for m in _TAG.finditer(text):
        add("tag", m.group(1), m.start())
    for m in _MENTION.finditer(text):
        add("person", m.group(1), m.start())
    for rx in (_SPEAKER, _PERSON_BEFORE, _PERSON_AFTER):
        for m in rx.finditer(text):
            add("person", m.group(1), m.start(1))
    return sorted(found, key=lambda e: found[e])


_FILE_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*\.(?:" + _FILE_EXT + r")", re.I)


def _looks_like_path(token: str) -> bool:
    """A slash-separated token that is a path, not prose ("and/or", "read/write", "1/2")."""
    if token.startswith(("/", "~/", "./", "../")):
        return len(token.strip("/.~")) > 1
    parts = token.split("/")
    if any(not p for p in parts):
        return False
    if _FILE_NAME.fullmatch(parts[-1]):
        return True
    # Two short words joined by a slash are prose; three levels or more read as a path.
    return len(parts) >= 3 and not all(p.isdigit() for p in parts)


def normalise(kind: str, raw: str) -> str:
    """The canonical spelling of an entity name of `kind` ('' when nothing is left of it)."""
    name = raw.strip().strip("`'\"").rstrip(".,;:!?)]}")
    if kind == "file":
        while name.startswith("./"):
            name = name[2:]
        return name
    name = " ".join(name.split()).casefold()
    if kind == "tag":
        name = name.lstrip("#")
    if kind == "person" and (name in _NOT_NAMES or name.split(" ")[0] in _NOT_NAMES):
        return ""
    if kind == "host":
        name = name.rstrip(".")
    return name[:200]


_HOST_NAME = re.compile(r"(?=\S*\d)[a-z][a-z0-9]*(?:-[a-z0-9]+)*", re.I)
_TOKEN = re.compile(r"[\w][\w.@/~-]*[\w]|[\w]")


def candidates(text: str) -> set[Entity]:
    """Every entity `text` might name if it is already known elsewhere: the extractor finds an
    entity by a cue ("host db01", "Ada said"); once known, a later bare "db01" or "Ada" is the
    same entity. Capitalised words and pairs may be people or projects, distinctive tokens
    (with a digit, dot, hyphen or slash) hosts or files, and any word a tag or project. The
    caller keeps only those that exist (a graph lookup), so most of these cost nothing."""
    out: set[Entity] = set()
    tokens = [t.rstrip(".") for t in _TOKEN.findall(text)]
    for i, token in enumerate(tokens):
        low = token.casefold()
        if low in _NOT_NAMES or len(token) < 2:
            continue
        if token[0].isupper():
            out.add(Entity("person", low))
            if i + 1 < len(tokens) and tokens[i + 1][:1].isupper():
                out.add(Entity("person", f"{low} {tokens[i + 1].casefold()}"))
        out.add(Entity("project", low))
        out.add(Entity("tag", low))
        if any(c.isdigit() or c in ".-" for c in token):
            out.add(Entity("host", low))
        if "/" in token or "." in token:
            out.add(Entity("file", normalise("file", token)))
    return out


def classify(value: str) -> Entity | None:
    """An entity for a value that names one thing (an `applies_to` item, a wiki tag): a file or a
    host when it looks like one, else a project. None for an empty value."""
    value = value.strip()
    if not value:
        return None
    for entity in extract_entities(value):
        if entity.kind in ("file", "host") and len(entity.name) >= len(value.strip("./")) - 2:
            return entity
    if _HOST_NAME.fullmatch(value):  # stg-7, db01, web-3a: a machine's name, not a project's
        return Entity("host", normalise("host", value))
    name = normalise("project", value)
    return Entity("project", name) if name else None


__all__ = ["Entity", "KINDS", "candidates", "classify", "extract_entities", "normalise"]
