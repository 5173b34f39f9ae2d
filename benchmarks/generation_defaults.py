"""Generation defaults for local models, chosen by measurement: does SmolLM2 loop, and what fixes it?

Runs the quickstart's docs question-answering pipeline (opsloop's docs
indexed with MiniLM, ``rag_qa`` with k=3 and 64 new tokens, greedy) with the
bundled SmolLM2-135M-Instruct over the docs questions, once per generation
setting, and prints per setting:

- ``loops``: share of answers that loop (a line of 3+ words repeated, or a
  word 4-gram occurring 3+ times; ``looping`` below);
- ``distinct-2``: distinct word bigrams / all bigrams, averaged over answers;
- ``contains`` (the quickstart's quality metric) and ``token_f1``;
- mean answer length in words and seconds per question.

The pipeline's own retrieve and prompt steps build each question's prompt
once; then the model answers every prompt as the LLM step does (one user
message, greedy), in batches of 8, once per setting. Penalties count the
generated tokens only (``LoadedCausalLM.anti_repetition``)::

    .venv/bin/python benchmarks/generation_defaults.py                 # held-out questions
    .venv/bin/python benchmarks/generation_defaults.py --split all --json out.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# This folder holds datasets.py, which would shadow the `datasets` package sentence-transformers
# imports: run with the repository root (not this folder) on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

SETTINGS: dict[str, dict[str, Any]] = {
    "none (before)": {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0},
    "rp 1.2": {"repetition_penalty": 1.2, "no_repeat_ngram_size": 0},
    "ngram 4": {"repetition_penalty": 1.0, "no_repeat_ngram_size": 4},
    "rp 1.1": {"repetition_penalty": 1.1, "no_repeat_ngram_size": 0},
    "rp 1.3": {"repetition_penalty": 1.3, "no_repeat_ngram_size": 0},
    "ngram 3": {"repetition_penalty": 1.0, "no_repeat_ngram_size": 3},
    "rp 1.1 + ngram 4": {"repetition_penalty": 1.1, "no_repeat_ngram_size": 4},
}

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def looping(text: str, n: int = 4, times: int = 3) -> bool:
    """Whether ``text`` loops: a line of 3+ words twice, or a word ``n``-gram ``times`` times."""
    lines = [" ".join(_words(line)) for line in text.splitlines()]
    counts = Counter(line for line in lines if len(line.split()) >= 3)
    if any(c >= 2 for c in counts.values()):
        return True
    w = _words(text)
    grams = Counter(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return any(c >= times for c in grams.values())


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word ``n``-grams over all ``n``-grams (1.0 for texts too short to have any)."""
    w = _words(text)
    grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="heldout", choices=["train", "heldout", "all"])
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names")
    ap.add_argument("--cache-dir", type=Path, default=None, help="converted model weights")
    ap.add_argument("--json", type=Path, default=None, help="also write figures (and answers)")
    args = ap.parse_args(argv)

    import opsloop
    from opsloop.llm import get_provider
    from opsloop.quickstart import docs_questions
    from opsloop.quickstart._docs_eval import (
        build_docs_index,
        docs_prompts,
        generate_docs_answers,
        score_docs_answers,
    )

    rows = docs_questions(None if args.split == "all" else args.split)
    if args.limit:
        rows = rows[: args.limit]
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-gen-defaults-") as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        client = opsloop.Client(home=Path(tmp) / "home")
        try:
            t0 = time.perf_counter()
            index = build_docs_index(client, cache_dir=cache)
            print(f"docs indexed in {time.perf_counter() - t0:.1f}s; {len(rows)} questions")
            prompts = docs_prompts(client, rows, index=index, cache_dir=cache)
            lm = get_provider("local:smollm2", cache_dir=cache).loaded
            for name in names:
                t0 = time.perf_counter()
                answers = generate_docs_answers(lm, prompts, **SETTINGS[name])
                secs = (time.perf_counter() - t0) / len(rows)
                scores = score_docs_answers(answers, rows)
                loops = [looping(a) for a in answers]
                results.append(
                    {
                        "setting": name,
                        **SETTINGS[name],
                        "loops": sum(loops) / len(loops),
                        "distinct_2": sum(distinct_n(a) for a in answers) / len(answers),
                        **scores,
                        "words": sum(len(_words(a)) for a in answers) / len(answers),
                        "s_per_question": secs,
                        "looping_ids": [r["id"] for r, lp in zip(rows, loops, strict=True) if lp],
                        "answers": dict(zip([r["id"] for r in rows], answers, strict=True)),
                    }
                )
                print(
                    f"  {name}: loops {sum(loops)}/{len(loops)}, contains {scores['contains']:.3f}"
                    f", {secs:.1f} s/question",
                    flush=True,
                )
                if args.json:  # after every setting: an interrupted run keeps what it measured
                    args.json.write_text(json.dumps(results, indent=2))
        finally:
            client.close()

    print()
    print(
        f"SmolLM2-135M-Instruct, docs QA pipeline (k=3, 64 tokens, greedy), "
        f"{args.split} split, {len(rows)} questions"
    )
    head = (
        f"{'setting':<20} {'loops':>7} {'distinct-2':>10} {'contains':>9} {'token_f1':>9} "
        f"{'words':>6} {'s/q':>6}"
    )
    print(head)
    print("-" * len(head))
    base = results[0] if results else None
    for r in results:
        print(
            f"{r['setting']:<20} {r['loops']:>7.1%} {r['distinct_2']:>10.3f} "
            f"{r['contains']:>9.3f} {r['token_f1']:>9.3f} {r['words']:>6.1f} "
            f"{r['s_per_question']:>6.2f}"
        )
    if base is not None:
        print()
        print(f"looping with '{base['setting']}': {', '.join(base['looping_ids']) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
