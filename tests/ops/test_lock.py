"""The instance-wide lock: exclusive work (import, restore, backup) never overlaps a chat turn,
a command that cannot get it says who holds it after a bounded wait, and a crash frees it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.lock import InstanceBusy, InstanceLock, instance_lock, is_locked, read_holders
from tests.conftest import REPO_ROOT
from tests.fakes.drive import run_turn
from tests.fakes.fake_cli import fake_cli

HOLDER = textwrap.dedent("""
    import sys, time
    from mnemara.instance import Instance
    from mnemara.lock import instance_lock
    with instance_lock(Instance.named(sys.argv[1]), exclusive=sys.argv[2] == "x", purpose=sys.argv[3]):
        print("held", flush=True)
        time.sleep(120)
""")


def _hold(name: str, mode: str, purpose: str) -> subprocess.Popen:
    """Another process holding the lock of instance `name` until it is killed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, name, mode, purpose],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def holders() -> Any:
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        procs.append(_hold(*args))
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_second_process_gets_a_clear_busy_message_after_the_bounded_wait(
        make_instance: Any, run_mnemara: Any, holders: Any, tmp_path: Path) -> None:
    make_instance("work")
    holder = holders("work", "x", "import")
    out = tmp_path / "b.tar.gz"
    result = run_mnemara("backup", "-i", "work", "-o", str(out), env={"MNEMARA_LOCK_WAIT": "0.5"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith("mnemara: instance 'work' is busy: import (pid ")
    assert f"pid {holder.pid}" in line and "try again" in line
    assert not out.exists()


def test_shared_holders_coexist_and_keep_exclusive_out(make_instance: Any) -> None:
    inst = make_instance("work")
    with instance_lock(inst, exclusive=False, purpose="chat turn"), \
            instance_lock(inst, exclusive=False, purpose="index drain"):
        with pytest.raises(InstanceBusy) as busy:
            with instance_lock(inst, exclusive=True, purpose="import", wait=0.1):
                pass
        assert "chat turn" in str(busy.value) and str(os.getpid()) in str(busy.value)
        assert {h.purpose for h in read_holders(inst.root)} == {"chat turn", "index drain"}
    with instance_lock(inst, exclusive=True, purpose="import", wait=0.1):
        with pytest.raises(InstanceBusy, match="busy: import"):
            with instance_lock(inst, exclusive=False, purpose="chat turn", wait=0.1):
                pass
    assert read_holders(inst.root) == []  # released holders leave no entry behind


def test_a_killed_holder_frees_the_lock(make_instance: Any, holders: Any) -> None:
    inst = make_instance("work")
    holder = holders("work", "x", "restore")
    assert is_locked(inst.root)
    assert [h.purpose for h in read_holders(inst.root)] == ["restore"]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert not is_locked(inst.root)
    assert read_holders(inst.root) == []  # the dead holder's entry is not reported
    with instance_lock(inst, exclusive=True, purpose="backup", wait=1):
        pass


def test_the_lock_leaves_nothing_behind_and_its_record_is_private(make_instance: Any,
                                                                   snapshot_tree: Any) -> None:
    inst = make_instance("work")
    before = snapshot_tree(inst.root)
    with instance_lock(inst, exclusive=True, purpose="import"):
        assert (inst.root / ".lock.info").stat().st_mode & 0o777 == 0o600
    assert snapshot_tree(inst.root) == before


def test_a_chat_turn_waits_for_an_exclusive_holder_then_runs(home: Path, tmp_path: Path) -> None:
    from mnemara.instance import Instance
    inst = Instance.named("t")
    inst.create()
    fake = fake_cli(tmp_path / "fake", [[{"text": "after the import"}]])
    engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
    importer = InstanceLock(inst.root, inst.name, exclusive=True, purpose="import")
    assert importer.try_acquire()

    async def scenario() -> list[Any]:
        events: list[Any] = []

        async def turn() -> None:
            async for event in engine.run("hello"):
                events.append(event)

        task = asyncio.create_task(turn())
        for _ in range(200):  # the turn says what it waits for, and stores nothing meanwhile
            if any(isinstance(e, Notice) for e in events):
                break
            await asyncio.sleep(0.02)
        assert engine.store.count() == 0
        importer.release()
        await task
        return events

    try:
        events = asyncio.run(scenario())
    finally:
        engine.close()
    waiting = [e for e in events if isinstance(e, Notice) and "waiting for the instance lock" in e.text]
    assert waiting and "import (pid" in waiting[0].text
    assert isinstance(events[-1], TurnFinished) and events[-1].status == "complete"
    assert events[-1].text == "after the import"


def test_an_interrupt_while_waiting_sends_and_stores_nothing(home: Path, tmp_path: Path) -> None:
    from mnemara.instance import Instance
    inst = Instance.named("t")
    inst.create()
    fake = fake_cli(tmp_path / "fake", [[{"text": "never"}]])
    engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)

    async def scenario() -> list[Any]:
        with instance_lock(inst, exclusive=True, purpose="backup"):
            events: list[Any] = []

            async def turn() -> None:
                events.extend(await run_turn(engine, "hello"))

            task = asyncio.create_task(turn())
            await asyncio.sleep(0.3)
            await engine.interrupt()
            await asyncio.wait_for(task, 10)
            return events

    try:
        events = asyncio.run(scenario())
        assert isinstance(events[-1], TurnFinished) and events[-1].status == "refused"
        assert "interrupted while waiting" in (events[-1].error or "")
        assert engine.store.count() == 0
        assert fake.user_messages() == []
    finally:
        engine.close()
