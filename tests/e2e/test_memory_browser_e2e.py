"""The memory browser's "pin back into the window" on the wire: the REAL bundled CLI against the
fake Messages API.

An archived turn pinned back returns exactly as it was sent before it left (its stored rendering,
byte for byte), in its place in time; the request changes once, and from the next one on each
request extends the one before byte for byte again (the prompt cache reads it back).
"""

from __future__ import annotations

import pytest

from mnemara.ops.unarchive import unarchive
from tests.e2e.conftest import turn, window_blocks

pytestmark = pytest.mark.e2e


async def test_a_turn_pinned_back_is_sent_as_before_and_the_prefix_is_stable_again(engine, api) -> None:
    eng = engine
    await turn(eng, api, "Our staging host is stg-7, in rack 4.", "Noted: stg-7, rack 4.")
    await turn(eng, api, "And the queue?", "A small one.")
    first_sent = window_blocks(api.requests[-1])[0]  # turn #1, as the model read it
    eng.store.evict([1, 2], "budget")
    await turn(eng, api, "What next?", "Tests.")
    without = window_blocks(api.requests[-1])
    assert first_sent not in without

    said = unarchive(eng.store, eng.config, 1)  # `p` in the memory browser
    assert "back in the window, pinned" in said
    await turn(eng, api, "Where is staging?", "stg-7, rack 4.")
    back = window_blocks(api.requests[-1])
    await turn(eng, api, "Thanks.", "You're welcome.")
    later = window_blocks(api.requests[-1])
    # The one change: turn #1 is back first, byte for byte as it was sent before it left...
    assert back[0] == first_sent and back[1:len(without) + 1] == without
    # ...and from then on each request extends the one before byte for byte.
    assert later[:len(back)] == back and len(later) == len(back) + 2
