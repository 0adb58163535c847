"""The offline token estimate: conservative, monotonic, calibrated within bounds."""

from __future__ import annotations

import math

from mnemara.store import TokenEstimator, TurnStore
from mnemara.store.tokens import BLOCK_OVERHEAD_TOKENS, MAX_RATIO, MIN_RATIO

PROSE = ("The rolling window is the set of active rows, bounded by the number of turns and by an "
         "estimated token budget; eviction moves rows to the archive and nothing is deleted. ") * 20


def test_estimate_is_conservative_for_english_prose():
    # Claude's tokenizer averages roughly 4 characters per token on English prose: over-count it.
    est = TokenEstimator().estimate(PROSE)
    assert est >= len(PROSE) / 4 * 1.2


def test_estimate_grows_with_length_and_has_a_floor():
    e = TokenEstimator()
    sizes = [e.estimate("x" * n) for n in (0, 1, 10, 100, 1000, 10_000)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert e.estimate("") == BLOCK_OVERHEAD_TOKENS
    assert e.estimate_chars(0, blocks=3) == 3 * BLOCK_OVERHEAD_TOKENS
    assert e.estimate_chars(100, blocks=3) == e.estimate_chars(100) + 2 * BLOCK_OVERHEAD_TOKENS


def test_calibration_moves_toward_the_observed_ratio():
    e = TokenEstimator()
    before = e.estimate(PROSE)
    e.calibrate(chars=4000, real_tokens=1000)  # observed 4.0 chars/token
    assert 3.2 < e.chars_per_token < 4.0 and e.samples == 1
    assert e.estimate(PROSE) < before
    for _ in range(40):
        e.calibrate(chars=4000, real_tokens=1000)
    assert math.isclose(e.chars_per_token, 4.0, abs_tol=0.01)
    # even fully calibrated, the estimate keeps its safety margin over the real count
    assert e.estimate_chars(4000) > 1000


def test_calibration_is_clamped_against_absurd_observations():
    e = TokenEstimator()
    for _ in range(50):
        e.calibrate(chars=100_000, real_tokens=1)
    assert e.chars_per_token <= MAX_RATIO
    for _ in range(50):
        e.calibrate(chars=1000, real_tokens=100_000)
    assert e.chars_per_token >= MIN_RATIO


def test_small_or_empty_samples_teach_nothing():
    e = TokenEstimator()
    assert e.calibrate(chars=199, real_tokens=10) == 3.2
    assert e.calibrate(chars=10_000, real_tokens=0) == 3.2
    assert e.samples == 0


def test_store_estimates_from_the_rendered_text(tmp_path):
    with TurnStore(tmp_path / "t.sqlite") as s:
        turn = s.add_turn("user", [{"type": "text", "text": PROSE}])
        assert turn.est_tokens == s.estimator.estimate_chars(len(turn.rendered))
        thought = s.add_turn("assistant", [{"type": "thinking", "thinking": "z" * 50_000},
                                           {"type": "text", "text": "ok"}])
        assert thought.est_tokens < 100  # thinking is never sent, so it costs nothing
