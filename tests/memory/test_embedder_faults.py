"""The memory layer when its embedder fails: an Ollama that is not running, one without the
model, one too slow to answer. Writes never fail because of it, the outbox loses nothing, search
and automatic recall fall back to full text and say why, and once the embedder is back the
vectors follow. Also `rag_embedder: none` (full text only, by choice).

Real SQLite and LanceDB in temp dirs; the only server is the fake Ollama on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from mnemara.config import Config
from mnemara.index.embedders.ollama import OllamaEmbedder
from mnemara.instance import Instance
from mnemara.memory import recall
from mnemara.memory.outbox import Outbox
from mnemara.memory.service import MemoryService
from mnemara.memory.writes import add_manual, write_note
from mnemara.store.blocks import text_block
from mnemara.store.turns import TurnStore
from tests.fakes.fake_ollama import FakeOllama

MODEL = "nomic-embed-text"
TIMEOUT = 0.3  # seconds: connect and read timeout of the embedders made here

BACKUP = "the nightly backup job runs at 02:00 UTC on host vault-3"
DEPLOY = "the deploy window for the billing service is Tuesday morning"
PRINTER = "the printer on floor 3 is called inkblot and jams on A3 paper"


class FakeOllamaAt(FakeOllama):
    """The fake server on a given port: the same Ollama, restarted after it was down."""

    def __init__(self, port: int, models: dict[str, int] | None = None) -> None:
        super().__init__(models)
        self._server.server_close()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


def fast_embedder(url: str) -> OllamaEmbedder:
    return OllamaEmbedder(url, MODEL, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch):
    """These tests heal the server and expect the very next write to be embedded; in use, a
    failed embedder is left alone for a minute (tested on its own below)."""
    from mnemara.index import lance
    monkeypatch.setattr(lance, "EMBED_RETRY_SECONDS", 0.0)


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama({MODEL: 8}) as srv:
        yield srv


def make_instance(tmp_path: Path, **config) -> Instance:
    inst = Instance("faults", tmp_path / "inst")
    inst.create(Config.defaults().replace(**{"rag_embedder": "ollama", "rag_embed_model": MODEL,
                                             "recall_min_score": 0.02, **config}))
    return inst


@pytest.fixture
def opened(tmp_path: Path):
    """Open things to close at the end: stores and services."""
    things: list = []
    yield things
    for thing in reversed(things):
        thing.close()


def set_up(tmp_path: Path, server: FakeOllama, opened: list):
    """An instance on the fake Ollama, its store, and a service with a fast-failing embedder."""
    inst = make_instance(tmp_path, rag_embed_url=server.url)
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    service = MemoryService(inst, cfg, embedder=fast_embedder(server.url))
    opened.append(service)
    return inst, cfg, store, service


def built_while_ollama_worked(tmp_path: Path, server: FakeOllama, opened: list):
    """An instance whose index was built (with vectors) by a session that has ended; returns
    the instance, its config, a store and the note it indexed."""
    inst = make_instance(tmp_path, rag_embed_url=server.url)
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    first = MemoryService(inst, cfg)
    written = write_note(inst, store, cfg, BACKUP)
    assert first.search(BACKUP).mode == "hybrid"
    first.close()
    return inst, cfg, store, written


def hit(result, atom_id: str):
    return next((h for h in result.hits if h.atom.id == atom_id), None)


def has_vector(result, atom_id: str) -> bool:
    """Searched with the atom's own text, an embedded atom matches its vector exactly."""
    found = hit(result, atom_id)
    assert found is not None, [h.atom.id for h in result.hits]
    return found.signals.get("vector", 0.0) > 0.9


# --- each fault, after the index was built with a working embedder --------------------------------

def break_by_stopping(server: FakeOllama, embedder: OllamaEmbedder):
    port = int(server.url.rsplit(":", 1)[1])
    server.__exit__(None, None, None)  # the port is closed now

    def heal() -> FakeOllama:
        return FakeOllamaAt(port, {MODEL: 8}).__enter__()
    return "is not reachable", heal


def break_by_removing_the_model(server: FakeOllama, embedder: OllamaEmbedder):
    server.models.clear()  # answers 404 {"error": "model ... not found, try pulling it first"}

    def heal() -> FakeOllama:
        server.models[MODEL] = 8
        return server
    return f"model {MODEL} is not pulled; run `ollama pull {MODEL}`", heal


def break_by_slowing_down(server: FakeOllama, embedder: OllamaEmbedder):
    server.delay = 5.0  # far past the read timeout

    def heal() -> FakeOllama:
        server.delay = 0.0
        return server
    return f"did not answer within the {TIMEOUT:g} s read timeout", heal


FAULTS = {"server down": break_by_stopping, "model missing": break_by_removing_the_model,
          "server slow": break_by_slowing_down}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_embedder_loses_nothing_and_search_falls_back_to_full_text(tmp_path, server, opened, fault):
    inst = make_instance(tmp_path, rag_embed_url=server.url)
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    embedder = fast_embedder(server.url)
    service = MemoryService(inst, cfg, embedder=embedder)
    opened.append(service)
    before = write_note(inst, store, cfg, BACKUP)
    result = service.search(BACKUP)
    assert result.mode == "hybrid" and result.note is None and has_vector(result, before.id)

    reason, heal = FAULTS[fault](server, embedder)

    # writes go on: a note, a manual entry, archived turns
    during = write_note(inst, store, cfg, DEPLOY, "decision")
    manual = add_manual(store, PRINTER, kind="fact")
    store.add_turn("user", [text_block("the lease timeout of the queue is 45 seconds")])
    store.add_turn("assistant", [text_block("noted: 45 seconds")])
    store.evict([1, 2], "test")
    assert DEPLOY in during.path.read_text()

    result = service.search("when is the deploy window for billing")
    assert result.mode == "text"
    assert result.note and reason in result.note and "full-text search only" in result.note
    assert result.hits[0].atom.id == during.id
    assert "vector" not in result.hits[0].signals  # full text only: no vector signal
    assert hit(service.search("printer floor 3"), manual.id) is not None
    assert hit(service.search("lease timeout of the queue"), "turn:1") is not None
    # nothing was left behind in the outbox, nothing marked failing
    state = Outbox(store.conn).state()
    assert (state.pending, state.failing) == (0, 0)

    # automatic recall still brings back lexical matches, and says how it searched
    picked = recall.pick(service, store, cfg, "is the deploy window on tuesday?")
    assert picked.block is not None and picked.mode == "text"
    assert picked.block["items"][0]["id"] == during.id and picked.block["mode"] == "text"
    assert picked.note and reason in picked.note

    healed = heal()
    try:
        after = write_note(inst, store, cfg, "the staging host moved to stg-9 in rack 2")
        result = service.search("the staging host moved to stg-9 in rack 2")
        assert result.mode == "hybrid" and result.note is None
        assert has_vector(result, after.id)  # written after the recovery: embedded at once
        # written during the outage: given their vectors by the first drain after it
        assert has_vector(service.search(DEPLOY), during.id)
        assert has_vector(service.search(PRINTER), manual.id)
        assert service.index().backfill_vectors() == 0
    finally:
        if healed is not server:
            healed.__exit__(None, None, None)


def test_status_says_full_text_while_the_embedder_is_down(tmp_path, server, opened):
    inst, cfg, store, service = set_up(tmp_path, server, opened)
    write_note(inst, store, cfg, BACKUP)
    service.search(BACKUP)
    server.models.clear()
    assert service.search("backup").mode == "text"
    status = service.status()
    assert status.mode == "text" and status.note and "not pulled" in status.note


def test_a_reindex_after_the_outage_makes_every_search_hybrid_again(tmp_path, server, opened):
    inst, cfg, store, service = set_up(tmp_path, server, opened)
    write_note(inst, store, cfg, BACKUP)
    service.search(BACKUP)
    server.models.clear()
    during = write_note(inst, store, cfg, DEPLOY)
    assert service.search(DEPLOY).mode == "text"
    server.models[MODEL] = 8
    assert service.reindex() == 2
    result = service.search(DEPLOY)
    assert result.mode == "hybrid" and has_vector(result, during.id)


# --- the embedder is down when the instance starts --------------------------------------------------

def down_embedder(kind: str, server: FakeOllama) -> tuple[dict, OllamaEmbedder | str, str]:
    """(config changes, the service's embedder, what the error says) for each fault."""
    if kind == "server down":
        url = f"http://127.0.0.1:{free_port()}"
        return {"rag_embed_url": url}, "config", "is not reachable"
    if kind == "model missing":
        server.models.clear()
        return {"rag_embed_url": server.url}, "config", "is not pulled"
    server.delay = 5.0
    return {"rag_embed_url": server.url}, fast_embedder(server.url), "read timeout"


@pytest.mark.parametrize("fault", FAULTS)
def test_writes_made_while_the_embedder_never_answered_are_searchable_and_embedded_later(
        tmp_path, server, opened, fault):
    changes, embedder, reason = down_embedder(fault, server)
    inst = make_instance(tmp_path, **changes)
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    service = MemoryService(inst, cfg, embedder=embedder)
    opened.append(service)
    written = write_note(inst, store, cfg, BACKUP)
    assert BACKUP in written.path.read_text()
    # A fresh index opens full text only: the note is indexed and found, and it says why.
    result = service.search("when does the nightly backup run")
    assert result.mode == "text" and reason in result.note
    assert result.hits[0].atom.id == written.id
    assert Outbox(store.conn).state().pending == 0
    status = service.status()
    assert status.mode == "text" and reason in status.line()

    # the embedder comes back (the same config, or the same embedder object)
    server.delay = 0.0
    server.models[MODEL] = 8
    healed = MemoryService(inst, cfg.replace(rag_embed_url=server.url, rag_embed_model=MODEL),
                           embedder=embedder)
    opened.append(healed)
    result = healed.search(BACKUP)
    assert result.mode == "hybrid" and has_vector(result, written.id)


def test_a_changed_model_name_asks_for_a_reindex_instead_of_mixing_vectors(tmp_path, server, opened):
    inst, cfg, store, written = built_while_ollama_worked(tmp_path, server, opened)
    other = MemoryService(inst, cfg.replace(rag_embed_model="other-model"))
    opened.append(other)
    result = other.search("when does the nightly backup run")
    assert result.mode == "text" and "run `mnemara reindex`" in result.note
    assert result.hits[0].atom.id == written.id


@pytest.mark.parametrize("fault", FAULTS)
def test_the_embedder_down_at_start_still_leaves_full_text_search(tmp_path, server, opened, fault):
    # The index was built while Ollama worked; mnemara starts again while it does not.
    inst, cfg, store, written = built_while_ollama_worked(tmp_path, server, opened)
    changes, embedder, reason = down_embedder(fault, server)
    restarted = MemoryService(inst, cfg.replace(**changes), embedder=embedder)
    opened.append(restarted)
    result = restarted.search("when does the nightly backup run")
    assert result.mode == "text" and result.note and reason in result.note
    assert result.hits[0].atom.id == written.id
    picked = recall.pick(restarted, store, cfg, "when does the nightly backup run")
    assert picked.block is not None and picked.block["items"][0]["id"] == written.id


# --- no embedder at all -----------------------------------------------------------------------------

def test_embedder_none_is_full_text_only_and_says_so(tmp_path, opened):
    inst = make_instance(tmp_path, rag_embedder="none")
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    service = MemoryService(inst, cfg)
    opened.append(service)
    note = write_note(inst, store, cfg, BACKUP)
    manual = add_manual(store, PRINTER)
    result = service.search("when does the nightly backup run")
    assert result.mode == "text" and result.note == ("no embedder configured (rag_embedder is none): "
                                                     "full-text search only")
    assert result.hits[0].atom.id == note.id and "vector" not in result.hits[0].signals
    assert service.search("printer floor 3").hits[0].atom.id == manual.id
    status = service.status()
    assert status.mode == "text"
    assert status.note == "no embedder configured (rag_embedder is none): full-text search only"
    assert "memory text" in status.line() and "rag_embedder is none" in status.line()
    picked = recall.pick(service, store, cfg, "when does the nightly backup run?")
    assert picked.block is not None and picked.block["items"][0]["id"] == note.id
    assert picked.mode == "text" and "no embedder configured" in picked.note


def test_an_index_built_without_embedder_gets_vectors_once_one_is_configured(tmp_path, server, opened):
    inst = make_instance(tmp_path, rag_embedder="none")
    cfg = inst.load_config()
    store = TurnStore(inst.turns_path)
    opened.append(store)
    plain = MemoryService(inst, cfg)
    note = write_note(inst, store, cfg, BACKUP)
    assert plain.search(BACKUP).mode == "text"
    plain.close()
    # the user installs Ollama and switches the embedder; the index is not rebuilt
    cfg = cfg.replace(rag_embedder="ollama", rag_embed_url=server.url)
    service = MemoryService(inst, cfg)
    opened.append(service)
    later = write_note(inst, store, cfg, DEPLOY)
    result = service.search(DEPLOY)
    assert result.mode == "hybrid" and has_vector(result, later.id)
    assert has_vector(service.search(BACKUP), note.id)  # the older note got its vector too
    assert service.index().backfill_vectors() == 0


def test_a_failed_embedder_is_left_alone_for_a_while(tmp_path, server, opened, monkeypatch):
    """A hung server would otherwise cost its timeout on every write and every recall."""
    from mnemara.index import lance
    monkeypatch.setattr(lance, "EMBED_RETRY_SECONDS", 3600.0)
    inst, cfg, store, service = set_up(tmp_path, server, opened)
    write_note(inst, store, cfg, BACKUP)
    assert service.search(BACKUP).mode == "hybrid"
    server.delay = 5.0
    assert service.search(DEPLOY).mode == "text"  # this one waited for the timeout
    asked = len(server.requests)
    for text in (PRINTER, "the lease timeout is 45 seconds"):
        write_note(inst, store, cfg, text)
        result = service.search(text)
        assert result.mode == "text" and "full-text search only" in result.note
    assert len(server.requests) == asked  # not asked again while it is known to be failing
