"""Benchmark: `mnemara import` of a 5,000-turn conversation with the default local embedder.

Builds a JSONL conversation of conversation-like turns (a coding-assistant chat, seeded: user
turns of a word to a few sentences, assistant turns of two to twelve sentences, a minute apart)
and imports it into a fresh instance with the default config, so the real MiniLM model embeds
every turn. Prints the seconds spent reading, checking and storing the turns (one transaction,
then the window budget) and the seconds spent indexing them (draining the outbox into LanceDB:
embedding and writing), beside the target, with the token count that drives the embedding cost.

Target: the whole import well under 60 s (checked: < 60 s).

Other processes on the machine skew the figures (onnxruntime uses 2 threads): the load average
is printed first. `--embedder none` (full text only) or `hash` isolates the cost of storing and
of the LanceDB writes from that of the model.

Run: python benchmarks/bench_import.py [--turns N] [--embedder local|hash|none]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

TARGET_S = 60.0


# Pieces of a working conversation with a coding assistant, combined at random: the user asks in
# a sentence or two (sometimes just "ok"), the assistant answers in a paragraph or several.
OPENERS = ("Can you check why", "I noticed that", "Quick question:", "After the last deploy,",
           "It looks like", "Please explain why", "Yesterday", "Do you remember whether")
THINGS = ("the staging server", "the nightly backup job", "the login page", "our test suite",
          "the payment webhook", "the search index", "the config loader", "the release branch",
          "the docker image", "the retry logic", "the rate limiter", "the migration script")
HAPPENINGS = ("fails with a timeout", "returns stale data", "uses too much memory",
              "ignores the new setting", "breaks on unicode file names", "runs twice",
              "logs the password in clear text", "is slower than last week", "needs a new schema")
DETAILS = ("The traceback points at `connect()` in db.py line 212.", "It started after v2.3.",
           "Only production is affected.", "The metrics show a spike at 03:00 UTC.",
           "I already restarted the workers.", "CI is green, though.")
ANSWERS = ("The cause is a missing index on the events table, so each request scans it.",
           "I changed the timeout from 5 to 30 seconds and added a retry with back-off.",
           "Run `make migrate` on the staging host, then restart the workers one by one.",
           "The setting is read once at start-up, so a reload does not pick it up.",
           "I added a test that reproduces it with two concurrent requests.",
           "The fix is in the `retry_after` handling: the header is in seconds, not milliseconds.",
           "Keep the old behaviour behind a feature flag until the next release.",
           "The logs confirm it: the job was scheduled twice by two cron entries.",
           "I would not cache this: the data changes every few minutes.",
           "Here is the plan: measure first, then change the query, then compare.")
REPLIES = ("ok", "thanks!", "yes, go ahead", "no, keep it as it is", "sounds good", "why?", "done")


def user_text(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(REPLIES)
    text = f"{rng.choice(OPENERS)} {rng.choice(THINGS)} {rng.choice(HAPPENINGS)}?"
    return text + "".join(" " + rng.choice(DETAILS) for _ in range(rng.choice((0, 0, 1, 2))))


def assistant_text(rng: random.Random) -> str:
    sentences = rng.choices(ANSWERS, k=rng.choices((2, 4, 7, 12), weights=(30, 35, 25, 10))[0])
    paragraphs = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    return "\n\n".join(paragraphs)


def write_conversation(path: Path, turns: int, seed: int = 1) -> int:
    """Write `turns` JSONL lines, a minute apart; returns the file size in bytes."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(turns):
            role = "user" if i % 2 == 0 else "assistant"
            text = user_text(rng) if role == "user" else assistant_text(rng)
            ts = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(json.dumps({"role": role, "text": text, "ts": ts}) + "\n")
    return path.stat().st_size


def mean_tokens(path: Path) -> float:
    """Mean tokens per turn as the local model sees them (truncated at its limit)."""
    from tokenizers import Tokenizer

    from mnemara.index.embedders.local import MAX_TOKENS, TOKENIZER_PATH
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    return sum(len(tokenizer.encode(t).ids) for t in texts) / len(texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=5_000)
    ap.add_argument("--embedder", choices=("local", "hash", "none"), default="local")
    args = ap.parse_args()
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNEMARA_HOME"] = str(Path(tmp) / "home")  # before mnemara reads it
        from mnemara.config import Config
        from mnemara.instance import Instance
        from mnemara.ops.importer import import_conversation

        path = Path(tmp) / "conversation.jsonl"
        size = write_conversation(path, args.turns)
        tokens = mean_tokens(path)
        inst = Instance.named("bench")
        inst.create(Config.defaults().replace(rag_embedder=args.embedder))
        config = inst.load_config()
        report = import_conversation(inst, config, path)
        print(f"imported {report.imported:,} turns ({size / 1e6:.1f} MB of JSONL, {tokens:.0f} model "
              f"tokens per turn on average) with the {config.rag_embedder} embedder: "
              f"{report.in_window:,} in the window, {report.archived:,} archived, "
              f"{report.indexed:,} indexed" + (f"; note: {report.note}" if report.note else ""))
        print(f"  {'parse + check + store (one transaction)':<44} {report.store_seconds:8.2f} s  [info]")
        rate = report.indexed / report.index_seconds if report.index_seconds else 0.0
        print(f"  {'index (embed, LanceDB writes, graph links)':<44} {report.index_seconds:8.2f} s  [info] "
              f"{rate:.0f} turns/s, {rate * tokens:,.0f} tokens/s")
        ok = report.seconds < TARGET_S and report.indexed == args.turns
        print(f"  {'total':<44} {report.seconds:8.2f} s  target < {TARGET_S:.0f} s  "
              f"{'PASS' if ok else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
