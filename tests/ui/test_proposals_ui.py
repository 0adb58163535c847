"""/proposals as a user drives it: the TUI's review screen (Pilot key presses, and a snapshot at
80x24), the REPL's text list and `accept ID yes` through a pipe, and the digest notice both show
when the chat starts. The scripted fake CLI stands behind; the proposals are real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from mnemara.instance import Instance
from mnemara.replay.proposals import Proposal, ProposalSource, ProposalStore, make_proposal
from tests.ui.test_repl import env, script  # noqa: F401
from tests.ui.test_tui import chat_text, finish_turn, make_app, send, wait_for  # noqa: F401
from tests.ui.test_tui_snapshots import app_factory, settle  # noqa: F401


def add_proposals(inst: Instance) -> tuple[Proposal, Proposal]:
    """A wiki proposal with three source notes, then a role amendment (newer: listed first)."""
    notes = [ProposalSource(f"note:2026-12-0{n}.md:{n}", "note", f"memory/2026-12-0{n}.md:{n}",
                            f"2026-12-0{n}T09:00:00Z", text)
             for n, text in ((1, "Deployed the API to stg-7 again; it took 4 minutes."),
                             (2, "stg-7 is the staging box; prod is prd-2."),
                             (3, "Friday deploy went through stg-7 first, as always."))]
    wiki = make_proposal("wiki", "Staging host", "The staging host is **stg-7**.\n\n"
                         "- Deploys go through it before prod (prd-2).\n- A deploy takes ~4 min.",
                         "3 notes between 2026-12-01 and 2026-12-03 name stg-7", notes, "replay",
                         target="deploy/staging", created_at="2026-12-04T03:00:00Z")
    role = make_proposal("role", "Run the tests before claiming a fix",
                         "- Run the test suite before saying a change works.",
                         "2 self-observations: fixes claimed before the tests ran",
                         [ProposalSource("turn:7", "turn", "turn 7", "2026-12-02T15:00:00Z",
                                         "I said the fix worked; the tests then failed.")],
                         "replay", created_at="2026-12-04T03:00:01Z")
    store = ProposalStore(inst)
    assert store.add(wiki) and store.add(role)
    return wiki, role


def _digest(inst: Instance) -> None:
    (inst.root / "sleep").mkdir()
    (inst.root / "sleep" / "2026-12-04.md").write_text(
        "# Replay 2026-12-04\n\nsummary: 2 proposals, 3 near-duplicates archived\n")


# --- the TUI -------------------------------------------------------------------------------------

async def test_review_screen_rejects_and_accepts_with_one_key_each(make_app) -> None:
    from mnemara.ui.tui.proposals_screen import AmendmentConfirm, ProposalReviewScreen
    app = make_app(rag_enabled=False)
    inst = app.engine.instance
    doc = inst.root / "reviewer.md"
    doc.write_text("# Reviewer\n")
    app.engine.set_config(app.engine.config.replace(role_doc_path=str(doc)))
    wiki, role = add_proposals(inst)
    _digest(inst)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "last replay 2026-12-04" in chat_text(app))
        assert "2 proposals to review (/proposals)" in chat_text(app)
        await send(pilot, "/proposals")
        await wait_for(pilot, lambda: isinstance(app.screen, ProposalReviewScreen))
        screen = app.screen

        def shown(pane: str) -> str:
            return str(screen.query_one(pane).render())

        # The role amendment (newest) first, beside the turn it came from.
        assert "Run the test suite" in shown("#review-proposal-text")
        assert "turn:7" in shown("#review-sources-text")
        await pilot.press("down")  # the wiki proposal, beside its three notes
        assert "stg-7" in shown("#review-proposal-text")
        assert all(f"note:2026-12-0{n}.md:{n}" in shown("#review-sources-text") for n in (1, 2, 3))
        await pilot.press("r")
        await pilot.pause()
        assert ProposalStore(inst).get(wiki.id).status == "rejected"
        assert not inst.wiki_dir.exists()
        assert len(screen.proposals) == 1 and "Run the test suite" in shown("#review-proposal-text")

        await pilot.press("a")  # a role amendment asks first; n changes nothing
        await wait_for(pilot, lambda: isinstance(app.screen, AmendmentConfirm))
        # the keys show on the buttons ("[y]" as a markup string would vanish)
        assert [str(b.label) for b in app.screen.query("Button")] == ["Append [y]", "Cancel [n]"]
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert doc.read_text() == "# Reviewer\n" and ProposalStore(inst).get(role.id).status == "pending"
        assert "still pending" in shown("#review-status")

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AmendmentConfirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert doc.read_text() == "# Reviewer\n\n- Run the test suite before saying a change works.\n"
        (backup,) = inst.root.glob("reviewer.md.*.bak")
        assert backup.read_text() == "# Reviewer\n"
        assert ProposalStore(inst).get(role.id).status == "accepted"
        assert "Nothing left to review" in shown("#review-proposal-text")

        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProposalReviewScreen))
        await pilot.pause()
        text = chat_text(app)
        assert f"rejected {wiki.id}" in text and f"accepted {role.id}" in text


async def test_review_screen_accepts_a_wiki_page_at_once(make_app) -> None:
    from mnemara.ui.tui.proposals_screen import ProposalReviewScreen
    app = make_app(rag_enabled=False)
    wiki, _ = add_proposals(app.engine.instance)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/proposals")
        await wait_for(pilot, lambda: isinstance(app.screen, ProposalReviewScreen))
        await pilot.press("down", "a")
        await pilot.pause()
        page = app.engine.instance.wiki_dir / "deploy" / "staging.md"
        assert page.read_text().startswith("# Staging host\n\nThe staging host is **stg-7**.")
        assert ProposalStore(app.engine.instance).get(wiki.id).status == "accepted"
        # queued for the index through the outbox, like any page the model writes
        rows = app.engine.store.conn.execute(
            "SELECT atom_id FROM index_outbox WHERE atom_id LIKE 'wiki:deploy/staging#%'").fetchall()
        assert rows


async def test_the_models_amendment_reaches_the_review_screen(make_app) -> None:
    """The model calls propose_role_amendment (through the fake CLI and the real SDK transport);
    the proposal waits in the store, and /proposals shows it beside the turn that prompted it."""
    from mnemara.ui.tui.proposals_screen import ProposalReviewScreen
    app = make_app([[{"tool": "mcp__mnemara__propose_role_amendment", "id": "toolu_p",
                      "input": {"text": "Quote the failing line in every review.",
                                "rationale": "I paraphrased a failure twice.", "severity": "medium"}},
                     {"text": "I proposed an amendment."}]], rag_enabled=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "quote the failing line next time")
        await finish_turn(pilot)
        (proposal,) = ProposalStore(app.engine.instance).list("pending")
        assert proposal.origin == "model" and proposal.sources[0].atom_id == "turn:1"
        assert not (app.engine.instance.root / "role.md").exists()  # nothing applied
        await send(pilot, "/proposals")
        await wait_for(pilot, lambda: isinstance(app.screen, ProposalReviewScreen))
        assert "Quote the failing line" in str(app.screen.query_one("#review-proposal-text").render())
        assert "quote the failing line next time" in str(
            app.screen.query_one("#review-sources-text").render())


def test_review_screen_snapshot(snap_compare, app_factory) -> None:  # noqa: F811
    app = app_factory()
    add_proposals(app.engine.instance)

    async def open_review(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"/proposals", "enter")
        await pilot.pause(0.3)
        await pilot.press("down")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_review)


# --- the REPL ------------------------------------------------------------------------------------

def test_repl_lists_accepts_after_yes_and_rejects(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    e = script(env, tmp_path, [])
    home = Path(e["MNEMARA_HOME"])
    inst = Instance("r", home / "r")
    inst.create()
    doc = inst.root / "role.md"
    doc.write_text("# Role\n")
    inst.save_config(inst.load_config().replace(role_doc_path=str(doc)))
    wiki, role = add_proposals(inst)
    _digest(inst)
    lines = ["/proposals", f"/proposals show {wiki.id[:6]}", f"/proposals accept {role.id}",
             f"/proposals accept {role.id} yes", f"/proposals reject {wiki.id}", "/proposals"]
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "--no-tui", "-i", "r"],
                          input="\n".join(lines) + "\n", env=e, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    banner = out.split("/help lists commands")[0]
    assert "last replay 2026-12-04: 2 proposals, 3 near-duplicates archived" in banner
    listing = out.split(role.id, 1)[1]
    assert wiki.id in listing  # both listed, the newer first
    assert "memory/2026-12-02.md:2" in out  # show: the proposal beside its sources
    assert f"type: /proposals accept {role.id} yes" in out  # the first accept only asks
    assert f"accepted {role.id}: appended to the role doc" in out
    assert f"rejected {wiki.id}" in out
    assert out.rstrip().endswith("drafts them)")  # the last /proposals: nothing pending
    assert doc.read_text() == "# Role\n\n- Run the test suite before saying a change works.\n"
    assert len(list(inst.root.glob("role.md.*.bak"))) == 1
