"""/compress on the wire: the REAL bundled CLI against the fake Messages API.

What the summary request carries (the session's request continued: its tools and system prompt,
the window as the model read it, then the instruction), and which
blocks of the window's request change: once at the compress (the covered turns give way to the
summary), then every request extends the one before byte for byte again; undo gives back the
covered turns exactly as they were sent before.
"""

from __future__ import annotations

import pytest

from mnemara.ui.commands import dispatch
from mnemara.ui.compress_command import answer
from tests.e2e.conftest import turn, window_blocks
from tests.fakes.fake_api import offered_tool_names, system_text

pytestmark = pytest.mark.e2e

FILLER = " ".join(["The pipeline discussion covered caches, queues and retries in detail."] * 10)
SUMMARY = 'The user chose Postgres: "use Postgres, not MySQL" (#1). Nothing else is open.'


async def test_compress_changes_the_request_once_then_the_prefix_is_stable_again(engine, api) -> None:
    eng = engine
    await turn(eng, api, f"Please use Postgres, not MySQL. {FILLER}", f"Postgres it is. {FILLER}")
    await turn(eng, api, f"And the queue? {FILLER}", f"A small one. {FILLER}")
    await turn(eng, api, "Thanks, what next?", "Tests.")
    before = window_blocks(api.requests[-1])
    stored_before = {t.id: t.rendered for t in eng.store.window()}
    assert before == [stored_before[i] for i in range(1, 6)]

    api.enqueue([{"type": "text", "text": SUMMARY}])
    outcome = await dispatch(eng, "/compress 4")
    assert outcome.view == "compress", outcome.text
    ask = api.requests[-1]
    # The session's request continued (test_cache_share_e2e.py measures what the cache serves):
    # the whole window as the model read it, then the instruction; every tool call is refused.
    assert offered_tool_names(ask) == offered_tool_names(api.requests[-2])
    assert system_text(ask) == system_text(api.requests[-2])
    assert window_blocks(ask) == [stored_before[i] for i in range(1, 7)]
    assert "verbatim" in ask["messages"][0]["content"][-1]["text"]
    answer(eng, outcome.data["proposal"], True)
    summary = eng.store.window()[-1]

    await turn(eng, api, "Let's write the tests.", "Starting.")
    after = window_blocks(api.requests[-1])
    await turn(eng, api, "Go on.", "Done.")
    later = window_blocks(api.requests[-1])
    # The one change: the four covered turns gave way to the summary, after the turns that stay.
    assert after[:2] == [stored_before[5], stored_before[6]]
    assert after[2] == summary.rendered and 'turns="#1-#4"' in after[2]
    assert not set(after) & {stored_before[i] for i in range(1, 5)}
    # From then on each request extends the one before byte for byte (the cache reads it back).
    assert later[:len(after)] == after and len(later) == len(after) + 2

    undone = await dispatch(eng, "/compress undo")
    assert undone.kind == "info", undone.text
    await turn(eng, api, "One more.", "Sure.")
    restored = window_blocks(api.requests[-1])
    # Undo: the covered turns are back, byte for byte as they were sent before the compress.
    assert restored[:5] == before and summary.rendered not in restored
