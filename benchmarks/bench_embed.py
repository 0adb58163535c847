"""Benchmark: the local embedder (all-MiniLM-L6-v2 int8 ONNX, in-process).

Measures, for `mnemara.index.embedders.local.LocalEmbedder`:
- the import time of its dependencies (numpy, tokenizers, onnxruntime), in a fresh interpreter;
- the first-call load time (sha256 check of the model, tokenizer, onnxruntime session and the
  first embed), in a fresh interpreter, with the sha256 check also timed alone;
- the latency of one short query, p50 and p95 (target < 10 ms for both);
- the throughput on 2,000 conversation-like sentences of mixed length (a one-word reply to a short
  paragraph; ~25 tokens median), embedded in one call as the indexer does (target >= 120
  sentences/s on 2 cores), and, for information, on whole turns of 150 to 256 tokens.

Other processes on the machine skew the figures: the load average is printed first. By default
the embedder's own thread count is used (`default_threads()`: 1 on 2 cores); try --threads 2.

The sentences are deterministic (seeded) so figures are comparable between runs.

Run: python benchmarks/bench_embed.py [--sentences N] [--queries N] [--threads N]
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

QUERY_TARGET_S = 0.010
THROUGHPUT_TARGET = 120.0  # sentences per second

SUBJECTS = ("the staging server", "the deploy script", "our test suite", "the login page", "the cache",
            "this migration", "the API client", "my last commit", "the config file", "the build")
VERBS = ("fails on", "times out after", "needs a fix for", "was rewritten to handle", "breaks because of",
         "should log", "works again with", "depends on", "ignores", "retries")
OBJECTS = ("an empty token", "the new schema", "a missing environment variable", "the proxy settings",
           "two concurrent requests", "the nightly backup", "stale DNS entries", "a slow disk",
           "unicode file names", "the feature flag")
FILLER = ("I think", "Yesterday", "As we discussed,", "Honestly,", "For the record,", "Quick question:",
          "Could you check whether", "It turns out", "After the restart", "Note that")
REPLIES = ("ok", "thanks!", "yes, do it", "no, keep the old one", "sounds good", "why?", "go ahead",
           "wait", "done", "that worked, thank you")
CODE = ("`pytest -k index`", "`git log --oneline`", "stg-7.internal:8443", "ERR_CONN_RESET",
        "`SELECT count(*) FROM turns`", "src/index/store.py:142", "v2.4.1", "0x7f3a")


def sentence(rng: random.Random) -> str:
    parts = [rng.choice(FILLER), rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if rng.random() < 0.4:
        parts.append(f"({rng.choice(CODE)})")
    return " ".join(parts) + rng.choice((".", "?", "!", "."))


def corpus(n: int, seed: int = 7) -> list[str]:
    """Chat-sized pieces: short replies, one to three sentences mostly, a few short paragraphs."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.15:
            out.append(rng.choice(REPLIES))
            continue
        k = rng.choices((1, 2, 3, 6), weights=(50, 30, 15, 5))[0]
        out.append(" ".join(sentence(rng) for _ in range(k)))
    return out


def long_messages(n: int, seed: int = 8) -> list[str]:
    """Whole turns of 10 to 20 sentences (150 to 256 tokens after truncation)."""
    rng = random.Random(seed)
    return [" ".join(sentence(rng) for _ in range(rng.randint(10, 20))) for _ in range(n)]


def fresh_python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORTS = """
import json, time
out = {}
for name in ("numpy", "tokenizers", "onnxruntime"):
    t0 = time.perf_counter(); __import__(name); out[name] = time.perf_counter() - t0
t0 = time.perf_counter(); import mnemara.index.embedders.local; out["embedders.local"] = time.perf_counter() - t0
print(json.dumps(out))
"""

LOAD = """
import json, time
import numpy, tokenizers, onnxruntime
from mnemara.index.embedders import local
t0 = time.perf_counter(); local.verify_model(local.default_model_path()); sha = time.perf_counter() - t0
local._verified.clear()
emb = local.LocalEmbedder()
t0 = time.perf_counter(); emb.embed(["which host is staging?"]); first = time.perf_counter() - t0
print(json.dumps({"sha256": sha, "first": first}))
"""


def line(label: str, figures: str, verdict: str) -> None:
    print(f"  {label:<44} {figures}  {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=2_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs (the median is reported)")
    ap.add_argument("--long", type=int, default=200, help="whole-turn messages for the [info] line")
    args = ap.parse_args()
    from mnemara.index.embedders.local import LocalEmbedder

    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; "
          "fresh interpreters for import and load times")
    ok = True
    imports = fresh_python(IMPORTS)
    for name, seconds in imports.items():
        line(f"import {name}", f"{seconds * 1000:8.1f} ms", "[info]")
    line("import total", f"{sum(imports.values()) * 1000:8.1f} ms", "[info]")
    load = fresh_python(LOAD)
    line("sha256 of model.onnx (once per process)", f"{load['sha256'] * 1000:8.1f} ms", "[info]")
    line("first embed (verify + load + run)", f"{load['first'] * 1000:8.1f} ms", "[info]")

    emb = LocalEmbedder(threads=args.threads)
    emb.load()
    print(f"  onnxruntime intra-op threads: {emb._threads}")
    queries = ["which host is staging?", "what did we decide about the cache", "pancakes",
               "where is the deploy script", "why does the login page time out"]
    for q in queries * 2:  # warm-up
        emb.embed([q])
    times = []
    for i in range(args.queries):
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        emb.embed([q])
        times.append(time.perf_counter() - t0)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    good = p50 < QUERY_TARGET_S and p95 < QUERY_TARGET_S
    ok &= good
    line(f"short query ({args.queries} runs)", f"p50 {p50 * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms",
         f"target < {QUERY_TARGET_S * 1000:.0f} ms  {'PASS' if good else 'FAIL'}")

    texts = corpus(args.sentences)
    tokens = [len(emb._tokenizer.encode(t).ids) for t in texts]
    print(f"  corpus: {len(texts):,} chat sentences, tokens min {min(tokens)}, median "
          f"{statistics.median(tokens):.0f}, mean {statistics.mean(tokens):.0f}, max {max(tokens)}")
    emb.embed(texts[:64])  # warm-up
    rates, cpu = [], []
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        emb.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
        cpu.append(time.process_time() - c0)
    rate = statistics.median(rates)
    good = rate >= THROUGHPUT_TARGET
    ok &= good
    line(f"throughput (median of {args.runs})", f"{rate:8.1f} sentences/s (min {min(rates):.1f})",
         f"target >= {THROUGHPUT_TARGET:.0f}/s  {'PASS' if good else 'FAIL'}")
    # CPU time includes onnxruntime's spin-waiting; wall time far above cpu/2 means other load
    line("  process CPU per run", f"{statistics.median(cpu):8.1f} s", "[info]")

    longs = long_messages(args.long)
    t0 = time.perf_counter()
    emb.embed(longs)
    line(f"whole turns ({args.long}, 150-256 tokens each)",
         f"{len(longs) / (time.perf_counter() - t0):8.1f} turns/s", "[info]")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
