"""Secret redaction: each kind of credential is replaced by its marker, prose that only mentions
one is left alone, redaction is idempotent, and it is applied where the README says (notes, wiki
pages, manual index entries, every index atom) but never to the turn store; `redact: false`
turns it off. Real files, real SQLite, real LanceDB with the hash embedder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemara.redact import KINDS, find_secrets, redact, redact_value

GITHUB = "ghp_" + "Zx9Yw8Vu7Ts6" * 3
SECRETS = [
    # (text, kind, the secret that must be gone)
    ("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx0123456789_-abcdEF end", "anthropic-key",
     "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx0123456789_-abcdEF"),
    ("OPENAI_API_KEY=sk-proj-Abcdefghij1234567890KLMNop", "api-key", "sk-proj-Abcdefghij1234567890KLMNop"),
    ("legacy sk-AbCdEfGhIjKlMnOpQrSt0123456789abcdefGHIJKLmn.", "api-key",
     "sk-AbCdEfGhIjKlMnOpQrSt0123456789abcdefGHIJKLmn"),
    (f"git clone https://x:{GITHUB}@github.com/o/r", "github-token", GITHUB),
    ("token gho_" + "a" * 36, "github-token", "gho_" + "a" * 36),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF0123 ok", "github-token",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF0123"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
    ("SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack-token",
     "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("xoxp-1234-5678-abcdEFGH", "slack-token", "xoxp-1234-5678-abcdEFGH"),
    ('curl -H "Authorization: Bearer abcDEF123456ghiJKL789xyz" https://api', "bearer-token",
     "abcDEF123456ghiJKL789xyz"),
    ("password=hunter2!", "password", "hunter2!"),
    ("export DB_PASSWORD='correct horse battery'", "password", "correct horse battery"),
    ('{"user": "bob", "password": "p@ss w0rd"}', "password", "p@ss w0rd"),
    ("passwd: Tr0ub4dor&3", "password", "Tr0ub4dor&3"),
    ("client_secret = 9f8e7d6c5b4a", "password", "9f8e7d6c5b4a"),
    ("mysql --password s3cretPW --host db", "password", "s3cretPW"),
    ("postgres://admin:Sup3rS3cret@db.internal:5432/app", "url-password", "Sup3rS3cret"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "jwt", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98jAe\nZmFrZWtleWJvZHk=\n"
     "-----END RSA PRIVATE KEY-----\nthat was the key", "private-key", "MIIEpAIBAAKCAQEA7bq98jAe"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\nAAAAAAAAAAAAAAAA\n\ncut short",
     "private-key", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
    ("-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEF\r\n-----END PRIVATE KEY-----", "private-key",
     "MIIEvQIBADANBgkqhkiG9w0BAQEF"),
]


@pytest.mark.parametrize("text, kind, secret", SECRETS)
def test_each_kind_is_replaced_by_its_marker(text, kind, secret):
    out = redact(text)
    assert secret not in out
    assert f"[redacted:{kind}]" in out
    assert kind in KINDS
    assert redact(out) == out  # idempotent


def test_context_around_a_secret_is_kept():
    assert redact("password=hunter2 and more") == "password=[redacted:password] and more"
    assert redact('Authorization: Bearer abc123def456ghi789') == "Authorization: Bearer [redacted:bearer-token]"
    assert redact("-----BEGIN EC PRIVATE KEY-----\nAAAABBBBCCCCDDDD\n-----END EC PRIVATE KEY-----\nafter") \
        == "[redacted:private-key]\nafter"
    spans = find_secrets(f"a {GITHUB} b password=x1")
    assert [k for k, _, _ in spans] == ["github-token", "password"]
    assert spans[0][1:] == (2, 2 + len(GITHUB))


@pytest.mark.parametrize("prose", [
    "We use sk-learn for the classifier (scikit-learn, sk-learn-style pipelines, 2024 edition).",
    "The password reset email never arrived.",
    "Password: reset it from the account page.",
    "the AKIA prefix marks an access key id",
    "AKIA keys are 20 characters long",
    "Bearer of bad news; bearer tokens expire.",
    "The secretary: Alice. Passwords: long ones.",
    "password = os.environ[\"DB_PASSWORD\"]",
    "password=$DB_PASSWORD and secret=None and api_key=getenv('KEY')",
    "see https://example.com:8080/path and user@example.com",
    "the file starts with -----BEGIN PRIVATE KEY----- and nothing follows",
    "gh_pages branch, ghp_short, xox-rated, eyJ alone",
    "PWD=/home/me and token: the unit of text",
])
def test_prose_that_mentions_secrets_is_left_alone(prose):
    assert redact(prose) == prose
    assert find_secrets(prose) == []


_FRAGMENTS = st.sampled_from([s[0] for s in SECRETS] + [
    "password reset", " ", "\n", "sk-", "ghp_", "AKIA", "=", ":", '"', "'", "[redacted:password]",
    "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "Bearer ", "é", "\x1b[2J"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12)), max_size=12).map("".join))
def test_redaction_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once
    for _, start, end in find_secrets(text):
        assert 0 <= start < end <= len(text)


def test_large_and_adversarial_inputs_finish():
    """Inputs built to make a backtracking pattern go quadratic; each is scanned once."""
    for text in ("sk-" * 200_000, "password=" * 100_000, "-----BEGIN RSA PRIVATE KEY-----\n" * 50_000,
                 "bearer " * 100_000 + "1", "https://u:" * 100_000, "a" * 2_000_000, "eyJ" * 200_000):
        redact(text)


def test_structured_values_keep_identifiers():
    blocks = [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
               "input": {"command": f"git push https://x:{GITHUB}@github.com/o/r"}},
              {"type": "thinking", "thinking": f"the token {GITHUB}", "signature": "sig_AKIAIOSFODNN7EXAMPLE"}]
    out = redact_value(blocks)
    assert GITHUB not in json.dumps(out)
    assert out[0]["id"] == "toolu_1" and out[1]["signature"] == "sig_AKIAIOSFODNN7EXAMPLE"
    assert redact_value(out) == out
    assert redact_value([{"type": "text", "text": "nothing"}])[0]["text"] == "nothing"


# -- where it applies -------------------------------------------------------------------------------

HASH = {"rag_embedder": "hash"}


def test_notes_wiki_and_entries_are_written_redacted(make_instance):
    from mnemara.memory.writes import add_manual
    from mnemara.ops.memory import note, wiki_write
    from mnemara.store import TurnStore
    inst = make_instance("r", **HASH)
    written = note(inst, f"the deploy token is {GITHUB}", "insight", {"evidence": "password=hunter2"})
    text = written.path.read_text()
    assert GITHUB not in text and "[redacted:github-token]" in text
    assert "hunter2" not in text and "password=[redacted:password]" in text
    page = wiki_write(inst, "creds", f"# Creds\n\nAWS AKIAIOSFODNN7EXAMPLE\n")
    assert "AKIAIOSFODNN7EXAMPLE" not in page.path.read_text()
    note(inst, f"wiki copy {GITHUB}", "wiki/creds")  # a wiki/<slug> note appends to the page too
    assert GITHUB not in page.path.read_text()
    with TurnStore(inst.turns_path) as store:
        atom = add_manual(store, f"key {GITHUB}")
        stored = store.conn.execute("SELECT atom FROM manual_atoms").fetchone()[0]
        queued = [r[0] for r in store.conn.execute("SELECT atom FROM index_outbox WHERE atom IS NOT NULL")]
    assert GITHUB not in atom.text and GITHUB not in stored
    assert all(GITHUB not in q and "AKIAIOSFODNN7EXAMPLE" not in q and "hunter2" not in q for q in queued)


@pytest.mark.parametrize("redact", [True, False])
def test_a_correction_reason_is_kept_redacted(make_instance, redact):
    from mnemara.memory.writes import supersede
    from mnemara.ops.memory import note
    from mnemara.store import TurnStore
    inst = make_instance("r", redact=redact, **HASH)
    old = note(inst, "the deploy uses the staging key")
    with TurnStore(inst.turns_path) as store:
        supersede(inst, store, inst.load_config(), old.id, "the deploy uses the prod key",
                  reason=f"the old one leaked as {GITHUB}")
        (reason,) = store.conn.execute("SELECT reason FROM superseded").fetchone()
    notes = old.path.read_text()
    assert f"(corrects {old.id}: the old one leaked as" in notes
    assert (GITHUB in reason, GITHUB in notes) == (not redact, not redact)
    if redact:
        assert "[redacted:github-token]" in reason and "[redacted:github-token]" in notes


def test_redact_false_writes_what_was_given(make_instance):
    from mnemara.ops.memory import note
    inst = make_instance("r", redact=False, **HASH)
    assert GITHUB in note(inst, f"the deploy token is {GITHUB}").path.read_text()


def test_turns_stay_verbatim_but_their_index_entries_are_redacted(make_instance):
    from mnemara.memory.service import MemoryService
    from mnemara.store import TurnStore
    inst = make_instance("r", **HASH)
    with TurnStore(inst.turns_path) as store:
        turn = store.add_turn("user", [{"type": "text", "text": f"zanzibar deploy uses {GITHUB}"}])
    service = MemoryService(inst, inst.load_config())
    try:
        service.drain()
        hit = service.search("zanzibar deploy", k=1).hits[0]
        assert hit.atom.id == f"turn:{turn.id}"
        assert GITHUB not in hit.atom.text and "[redacted:github-token]" in hit.atom.text
        service.reindex()  # the rebuild from sources redacts the same way
        again = service.search("zanzibar deploy", k=1).hits[0]
        assert again.atom.text == hit.atom.text
        # Re-queuing the same turn rewrites the same entry: one atom, same text.
        with TurnStore(inst.turns_path) as store:
            store.update_turn(turn.id, status="complete")
        service.drain()
        hits = [h for h in service.search("zanzibar deploy", k=5).hits if h.atom.id == f"turn:{turn.id}"]
        assert len(hits) == 1 and hits[0].atom.text == hit.atom.text
    finally:
        service.close()
    with TurnStore(inst.turns_path) as store:
        assert GITHUB in store.get(turn.id).text  # the turn store keeps what was typed
        assert GITHUB in store.get(turn.id).rendered  # and the model is sent it as typed


def test_older_notes_are_indexed_redacted(make_instance):
    """A note written before redaction existed (or by hand) is not rewritten, but the index
    never holds its secret."""
    from mnemara.memory.service import MemoryService
    inst = make_instance("r", **HASH)
    inst.memory_dir.mkdir(mode=0o700)
    (inst.memory_dir / "2025-01-01.md").write_text(
        f"## [2025-01-01T00:00:00Z] note\nquixotic server password=hunter2 and {GITHUB}\n")
    service = MemoryService(inst, inst.load_config())
    try:
        service.reindex()
        hit = service.search("quixotic server", k=1).hits[0]
        assert "hunter2" not in hit.atom.text and GITHUB not in hit.atom.text
    finally:
        service.close()
    assert "hunter2" in (inst.memory_dir / "2025-01-01.md").read_text()


def test_redact_false_indexes_what_was_typed(make_instance):
    from mnemara.memory.service import MemoryService
    from mnemara.store import TurnStore
    inst = make_instance("r", redact=False, **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": f"zanzibar deploy uses {GITHUB}"}])
    service = MemoryService(inst, inst.load_config())
    try:
        service.drain()
        assert GITHUB in service.search("zanzibar deploy", k=1).hits[0].atom.text
    finally:
        service.close()


def test_a_token_glued_to_a_key_block_is_redacted_in_one_pass() -> None:
    """Found by hypothesis in CI: a GitHub token right after a PEM block's closing dashes only
    stood apart once the block was a marker, so a second redaction changed the text again."""
    text = ("-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEF\r\n-----END PRIVATE KEY-----"
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF0123 ok")
    once = redact(text)
    assert once == "[redacted:private-key][redacted:github-token] ok"
    assert redact(once) == once
