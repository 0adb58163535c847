"""Migrations may hold triggers and Python steps; a failing step leaves the store unchanged."""

import sqlite3

import pytest

from mnemara.store import db


def test_trigger_bodies_stay_one_statement():
    script = """
    CREATE TABLE a (x INTEGER);  -- a comment; with a semicolon
    CREATE TABLE log (x INTEGER);
    CREATE TRIGGER a_log AFTER INSERT ON a BEGIN
        INSERT INTO log (x) VALUES (NEW.x);
        INSERT INTO log (x) VALUES (NEW.x * 10);
    END;
    """
    statements = db.split_statements(script)
    assert len(statements) == 3
    conn = sqlite3.connect(":memory:")
    for s in statements:
        conn.execute(s)
    conn.execute("INSERT INTO a VALUES (2)")
    assert [r[0] for r in conn.execute("SELECT x FROM log ORDER BY x")] == [2, 20]


def test_python_steps_run_in_the_migration_transaction(tmp_path, monkeypatch):
    calls = []

    def step(conn):
        calls.append(conn.in_transaction)
        conn.execute("INSERT INTO meta (key, value) VALUES ('python-step', 'ran')")

    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS, step))
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(db.MIGRATIONS))
    conn = db.connect(tmp_path / "t.sqlite")
    assert calls == [True]
    assert conn.execute("SELECT value FROM meta WHERE key = 'python-step'").fetchone()[0] == "ran"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)


def test_a_failing_step_rolls_the_whole_upgrade_back(tmp_path, monkeypatch):
    def boom(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS, boom))
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(db.MIGRATIONS))
    with pytest.raises(RuntimeError):
        db.connect(tmp_path / "t.sqlite")
    conn = sqlite3.connect(tmp_path / "t.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
