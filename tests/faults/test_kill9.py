"""kill -9 at any moment of a turn or a note loses nothing that was done and resends nothing
that was not.

A real session (tests/faults/drive_turns.py: the TurnEngine, the SDK's subprocess transport, the
scripted fake CLI) runs numbered turns and flushes a line when each starts and finishes; it is
killed with SIGKILL at random moments (seeded: the seed is printed, and MNEMARA_FAULT_SEED=N
replays a failure), and deterministically right before and right after every commit of a turn.
After each kill: `PRAGMA integrity_check` is ok, every turn reported finished is in the store with
its reply, a killed turn is never left looking finished, memory files are whole notes only; and
every request the CLI received afterwards carried only finished turns, each with its reply, and
every one of them.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mnemara.config import Config
from mnemara.instance import Instance
from mnemara.memory.notes import format_note, parse_notes
from mnemara.store import TurnStore
from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().with_name("drive_turns.py")
TURNS = 100
TURN_RE = re.compile(r'<turn id="(\d+)" role="(user|assistant)"')
LINE_RE = re.compile(r"^(start|done) (\d+)(?: (\w+) (\d+) (\d+|None))?$")


def fault_seed() -> int:
    """The seed for this run: MNEMARA_FAULT_SEED replays one; printed so a failure can be replayed."""
    seed = int(os.environ.get("MNEMARA_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fault seed {seed} (replay with MNEMARA_FAULT_SEED={seed})")
    return seed


def model_note(i: int) -> str:
    """The note the fake model writes in script turn `i` (sizes vary, up to ~40 KB)."""
    return (f"model note {i} " + f"n{i}" * ((i * 997) % 12_000)).strip()


def script(n: int) -> list[list[dict[str, Any]]]:
    """Turn shapes for the fake CLI, in order: mostly streamed replies, every third a
    write_memory call (a note written by this process during the turn), then the reply."""
    turns: list[list[dict[str, Any]]] = []
    for i in range(n):
        if i % 3 == 1:
            turns.append([{"tool": "mcp__mnemara__write_memory", "input": {"text": model_note(i)}},
                          {"text": f"noted {i}", "chunks": 2, "delay": 0.005}])
        else:
            turns.append([{"text": f"reply {i} " + "word " * (i % 50), "chunks": 4, "delay": 0.005}])
    return turns


@dataclass
class Round:
    """What one driver process said before it ended (or was killed)."""

    started: list[int] = field(default_factory=list)
    done: dict[int, tuple[str, int, int | None]] = field(default_factory=dict)
    commits: int = 0  # with MNEMARA_FAULT_KILL_AT=count
    returncode: int | None = None
    stderr: str = ""


class Session:
    """One instance, the fake CLI set up for it, and the driver processes run against it."""

    def __init__(self, tmp: Path, *, turns: list[list[dict[str, Any]]] | None = None,
                 **config: Any) -> None:
        self.tmp = tmp
        self.instance = Instance.named("faults")
        self.instance.create(Config.defaults().replace(**config))
        self.fake = fake_cli(tmp / "fake", turns or script(400))
        self.env = {**os.environ, **self.fake.env, "MNEMARA_CLI_PATH": FAKE_CLI_PATH,
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                os.environ.get("PYTHONPATH")]))}
        self.rounds: list[Round] = []
        self.logs: list[Path] = []
        self.next_message = 0

    def start(self, count: int, kill_at: str | None = None) -> tuple[subprocess.Popen[str], Path]:
        log = self.tmp / f"cli-log-{len(self.logs)}.jsonl"  # one per process: a kill may tear its last line
        self.logs.append(log)
        env = dict(self.env, MNEMARA_FAKE_CLI_LOG=str(log))
        if kill_at:
            env["MNEMARA_FAULT_KILL_AT"] = kill_at
        stderr = self.tmp / f"driver-stderr-{len(self.logs)}.txt"
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(DRIVER), self.instance.name, str(self.next_message), str(count)],
                env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                start_new_session=True)  # its own process group: the fake CLI it starts dies with it
        return proc, stderr

    def run(self, count: int, *, kill: Any = None, kill_at: str | None = None) -> Round:
        """Run `count` turns; `kill(lines, seen, proc)` decides when to SIGKILL the driver (it
        moves the lines it reads from the `lines` queue to `seen`)."""
        proc, stderr_path = self.start(count, kill_at)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        seen: list[str] = []
        if kill is not None:
            kill(lines, seen, proc)
        reader.join(timeout=120)
        proc.wait(timeout=60)
        try:  # the fake CLI the driver was talking to, orphaned by the kill
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while (line := lines.get_nowait() if not lines.empty() else None) is not None:
            seen.append(line)
        rnd = parse_round(seen)
        rnd.returncode = proc.returncode
        rnd.stderr = stderr_path.read_text()
        self.rounds.append(rnd)
        self.next_message += count
        return rnd

    def requests(self) -> list[list[str]]:
        """The content blocks of every request the fake CLI received, in order."""
        out = []
        for log in self.logs:
            for entry in tolerant_log(log):
                msg = entry.get("stdin")
                if isinstance(msg, dict) and msg.get("type") == "user":
                    out.append([b["text"] for b in msg["message"]["content"]])
        return out

    def done(self) -> dict[int, tuple[str, int, int | None]]:
        return {n: d for r in self.rounds for n, d in r.done.items()}

    def started(self) -> set[int]:
        return {n for r in self.rounds for n in r.started}


def parse_round(lines: list[str]) -> Round:
    rnd = Round()
    for line in lines:
        if line.startswith("commits "):
            rnd.commits = int(line.split()[1])
        m = LINE_RE.match(line.strip())
        if not m:
            continue
        n = int(m[2])
        if m[1] == "start":
            rnd.started.append(n)
        else:
            rnd.done[n] = (m[3], int(m[4]), None if m[5] == "None" else int(m[5]))
    return rnd


def tolerant_log(path: Path) -> list[dict[str, Any]]:
    """The fake CLI's log; only a line torn by the kill (the last one) may fail to parse."""
    if not path.exists():
        return []
    raw = path.read_text().splitlines()
    out = []
    for i, line in enumerate(raw):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            assert i == len(raw) - 1, f"{path.name} line {i + 1} is torn but is not the last"
    return out


def kill_after_start(k: int, delay: float) -> Any:
    """SIGKILL `delay` seconds after the k-th `start` line (k=0: `delay` after spawning)."""
    def kill(lines: queue.Queue[str | None], seen: list[str], proc: subprocess.Popen[str]) -> None:
        starts = 0
        deadline = time.monotonic() + 60
        while starts < k and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:  # the driver ended by itself
                lines.put(None)
                return
            seen.append(line)
            starts += line.startswith("start ")
        time.sleep(delay)
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return kill


# --- checks ------------------------------------------------------------------------------------------

def message(n: int) -> str:
    return f"fault message {n}"


def check_integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def check_store(session: Session, context: str) -> dict[int, Any]:
    """Integrity, and every turn in a state some run of the session could honestly have left."""
    check_integrity(session.instance.turns_path)
    with TurnStore(session.instance.turns_path) as store:
        turns = {t.id: t for t in store.iter_all()}
    ids = sorted(turns)
    users = [t for t in turns.values() if t.role == "user"]
    texts = [t.text for t in users]
    assert len(texts) == len(set(texts)), f"{context}: a message was stored twice"
    done, started = session.done(), session.started()
    for n, (status, user_id, assistant_id) in done.items():
        assert status == "complete", f"{context}: turn {n} finished {status}"
        assert turns[user_id].text == message(n) and turns[user_id].status == "complete", \
            f"{context}: finished turn {n} lost or changed: {turns.get(user_id)}"
        assert assistant_id is not None and turns[assistant_id].role == "assistant"
        assert turns[assistant_id].status == "complete", f"{context}: the reply to turn {n} is lost"
    for turn in users:
        n = int(turn.text.rsplit(" ", 1)[1])
        if n not in done:  # killed during this turn
            assert n in started, f"{context}: message {n} was never sent"
        if turn.status == "complete":
            later = [i for i in ids if i > turn.id]
            assert later and turns[later[0]].role == "assistant", (
                f"{context}: turn {turn.id} ({turn.text!r}) is complete without its reply; the next "
                "request would resend the question with no answer")
        else:
            assert turn.status in ("failed", "pending") and n not in done, \
                f"{context}: {turn.status} turn {turn.id} for message {n}"
    pending = [t for t in users if t.status == "pending"]
    assert len(pending) <= 1, f"{context}: several pending turns {pending}"
    check_model_notes(session, turns, context)
    return turns


def check_notes_whole(memory_dir: Path, context: str) -> list[str]:
    """Every memory file is valid UTF-8 made of whole note blocks only; returns the bodies."""
    bodies = []
    for path in sorted(memory_dir.glob("*.md")):
        text = path.read_text(encoding="utf-8")  # strict: a torn multi-byte character fails here
        notes = list(parse_notes(path))
        rebuilt = "".join(format_note(n.body, n.category, at=datetime.fromisoformat(n.at))
                          for n in notes)
        assert rebuilt == text, f"{context}: {path.name} holds more than whole notes"
        bodies += [n.body for n in notes]
    assert len(bodies) == len(set(bodies)), f"{context}: a note was written twice"
    return bodies


def check_model_notes(session: Session, turns: dict[int, Any], context: str) -> None:
    """Notes the model wrote: each whole or absent, and present for every finished turn."""
    bodies = set(check_notes_whole(session.instance.memory_dir, context))
    possible = {model_note(i) for i in range(400)}
    assert bodies <= possible, f"{context}: a note that nobody wrote"
    for turn in turns.values():
        if turn.role == "assistant" and turn.status == "complete":
            for block in turn.blocks:
                if block.get("type") == "tool_use":
                    assert block["input"]["text"] in bodies, f"{context}: a saved note is lost"


def check_requests(session: Session, turns: dict[int, Any]) -> int:
    """Every request carried only finished turns, each question with its reply, none skipped."""
    requests = session.requests()
    for blocks in requests:
        items = []
        for block in blocks:
            m = TURN_RE.match(block)
            assert m, f"not a turn rendering: {block[:80]!r}"
            items.append((int(m[1]), m[2]))
        *history, (current, role) = items
        assert role == "user" and turns[current].text.startswith("fault message ")
        ids = [i for i, _ in history]
        assert ids == sorted(ids) and all(i < current for i in ids)
        for pos, (turn_id, role) in enumerate(history):
            turn = turns[turn_id]
            assert turn.status == "complete", \
                f"request for turn {current} resent {turn.status} turn {turn_id} ({turn.text!r})"
            if role == "user":
                assert pos + 1 < len(history) and history[pos + 1][1] == "assistant", \
                    f"request for turn {current} resent question {turn_id} without its reply"
        if ids:  # nothing finished in between was left out
            finished = {i for i, t in turns.items() if ids[0] <= i < current and t.status == "complete"}
            assert finished == set(ids), f"request for turn {current} left out {finished - set(ids)}"
    return len(requests)


# --- the tests ---------------------------------------------------------------------------------------

def test_kill9_at_random_moments_across_100_turns(home: Path, tmp_path: Path) -> None:
    """Eight SIGKILLs at random moments (while starting, streaming, writing a note, storing,
    evicting, indexing), then turns until 100 have finished; checked after every kill."""
    rng = random.Random(fault_seed())
    # The hash embedder keeps recall (and its LanceDB index, written during turns) in play
    # without loading a model; a 10-turn window makes eviction frequent.
    session = Session(tmp_path, max_window_turns=10, recall="off")
    for kill_round in range(8):
        k = rng.randint(0, 8)
        delay = rng.uniform(0, 1.5) if k == 0 else rng.uniform(0, 0.15)
        rnd = session.run(12, kill=kill_after_start(k, delay))
        context = f"after kill {kill_round + 1} (after start #{k}, +{delay:.3f} s)"
        assert rnd.returncode in (-signal.SIGKILL, 0), f"{context}: {rnd.stderr}"
        check_store(session, context)
    while len(session.done()) < TURNS:
        rnd = session.run(TURNS - len(session.done()))
        assert rnd.returncode == 0, rnd.stderr
    turns = check_store(session, "at the end")
    assert check_requests(session, turns) >= TURNS


def test_kill9_right_before_and_after_every_commit_of_a_turn(home: Path, tmp_path: Path) -> None:
    """Deterministic: a kill right before and right after each commit of a turn that evicts and
    has the model write a note (the note file is written inside the store's transaction)."""
    notes_only = [[{"tool": "mcp__mnemara__write_memory", "input": {"text": model_note(i)}},
                   {"text": f"noted {i}"}] for i in range(400)]
    session = Session(tmp_path, turns=notes_only, max_window_turns=4, recall="off")
    assert session.run(3).returncode == 0  # fill the window: every later turn evicts
    probe = session.run(1, kill_at="count")
    assert probe.returncode == 0 and probe.commits, probe.stderr
    for k in range(1, probe.commits + 1):
        for when in ("before", "after"):
            rnd = session.run(1, kill_at=f"{k}:{when}")
            context = f"killed {when} commit {k} of {probe.commits}"
            assert rnd.returncode == -signal.SIGKILL, f"{context}: not killed; {rnd.stderr}"
            check_store(session, context)
    assert session.run(2).returncode == 0
    check_requests(session, check_store(session, "at the end"))


def test_kill9_during_mnemara_note_leaves_whole_notes_or_none(home: Path, tmp_path: Path) -> None:
    """`mnemara note` in a loop, most runs killed at a random moment: each note is whole or absent,
    every note reported written is there at the line its id names, and the index queue points at
    real notes only."""
    rng = random.Random(fault_seed())
    inst = Instance.named("notes")
    inst.create()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    written: dict[str, str] = {}  # body -> the id `note` printed
    attempted: set[str] = set()
    for i in range(50):
        # up to 1 MB, so a kill can land in the middle of the file write
        body = (f"cli note {i} " + f"c{i} " * rng.choice([0, 40, 4000, 200_000])).strip()
        attempted.add(body)
        source = tmp_path / "body.txt"
        source.write_text(body)
        with source.open() as stdin:
            proc = subprocess.Popen([sys.executable, "-m", "mnemara", "note", "-i", "notes", "-"],
                                    env=env, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            if rng.random() < 0.7:
                time.sleep(rng.uniform(0.02, 0.2))
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            written[body] = re.search(r"\(id (note:[^)]+)\)", out)[1]
        else:
            assert proc.returncode == -signal.SIGKILL, err
        context = f"after note {i}"
        bodies = check_notes_whole(inst.memory_dir, context)
        assert set(bodies) <= attempted
        check_integrity(inst.turns_path)
    assert 0 < len(written) < 50  # some kills landed, some runs finished
    notes = {f"note:{n.path.name}:{n.line}": n.body
             for path in inst.memory_dir.glob("*.md") for n in parse_notes(path)}
    for body, note_id in written.items():
        assert notes.get(note_id) == body, f"note {note_id} reported written is not there"
    conn = sqlite3.connect(inst.turns_path)
    queued = conn.execute("SELECT atom_id, atom FROM index_outbox WHERE atom_id LIKE 'note:%'").fetchall()
    conn.close()
    assert {atom_id for atom_id, _ in queued} >= set(written.values())
    for atom_id, atom in queued:
        assert notes.get(atom_id) == json.loads(atom)["text"], f"{atom_id} queued for a note not there"


def test_a_note_torn_by_a_kill_does_not_swallow_the_next_one(cli, make_instance) -> None:
    """A SIGKILL during the write of a large note leaves a short write (Linux stops a write to a
    regular file at a page boundary when a fatal signal arrives): the file then ends in the
    middle of a note, with no newline. The next note must still be a note of its own, at the line
    its id names, and the notes before stay as they were."""
    inst = make_instance("notes")
    assert cli("note", "-i", "notes", "first note").exit_code == 0
    big = "torn " * 50_000
    assert cli("note", "-i", "notes", "-", input=big).exit_code == 0
    (path,) = inst.memory_dir.glob("*.md")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(big) // 2])  # what the killed writer left
    result = cli("note", "-i", "notes", "after the crash")
    assert result.exit_code == 0, result.output
    note_id = re.search(r"\(id (note:[^)]+)\)", result.stdout)[1]
    notes = list(parse_notes(path))
    bodies = [n.body for n in notes]
    assert bodies[0] == "first note" and bodies[-1] == "after the crash", bodies[-1][-200:]
    assert len(bodies) in (2, 3)  # the torn note dropped, or kept apart as what was left of it
    assert f"note:{path.name}:{notes[-1].line}" == note_id
