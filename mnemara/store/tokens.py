"""Offline token estimate, calibrated from real API usage.

There is no offline Claude tokenizer, so the estimate is conservative on purpose: it is better to
evict a little early than to overflow the model's context.

- A turn's size is the length of its *rendered* form (exactly the text mnemara sends), in
  characters, plus a fixed per-block overhead for the JSON framing around each content block.
- Characters per token starts at 3.2 (English prose is usually ~3.8-4.2 chars/token; code and
  JSON are denser, so 3.2 over-counts prose by ~20% and code by a little).
- After each turn the engine reports the real `input_tokens` (+ cache reads and writes) of the
  last API call and the characters that produced them. The ratio is nudged toward the observed
  one (exponential moving average, weight 0.3) and then clamped to [2.0, 5.0], and the estimate
  keeps a 10% safety margin, so one odd turn cannot make the budget wildly optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_CHARS_PER_TOKEN = 3.2
BLOCK_OVERHEAD_TOKENS = 4
SAFETY_MARGIN = 1.10
MIN_RATIO, MAX_RATIO = 2.0, 5.0
EMA_WEIGHT = 0.3


@dataclass
class TokenEstimator:
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    samples: int = 0

    def estimate_chars(self, chars: int, blocks: int = 1) -> int:
        """Estimated tokens for `chars` characters spread over `blocks` content blocks."""
        if chars <= 0:
            return BLOCK_OVERHEAD_TOKENS * blocks
        return math.ceil(chars / self.chars_per_token * SAFETY_MARGIN) + BLOCK_OVERHEAD_TOKENS * blocks

    def estimate(self, text: str) -> int:
        return self.estimate_chars(len(text))

    def calibrate(self, chars: int, real_tokens: int) -> float:
        """Learn from one observation: `chars` characters cost `real_tokens` input tokens."""
        if chars < 200 or real_tokens <= 0:
            return self.chars_per_token  # too small to say anything about the ratio
        observed = min(MAX_RATIO, max(MIN_RATIO, chars / real_tokens))
        self.chars_per_token = round(
            (1 - EMA_WEIGHT) * self.chars_per_token + EMA_WEIGHT * observed, 4)
        self.samples += 1
        return self.chars_per_token
