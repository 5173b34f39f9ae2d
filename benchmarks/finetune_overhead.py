"""Fine-tuning job overhead: an opsloop job against a plain TRL script, same data and settings.

    .venv/bin/python benchmarks/finetune_overhead.py                # small and larger settings
    .venv/bin/python benchmarks/finetune_overhead.py --sizes small  # one setting
    .venv/bin/python benchmarks/finetune_overhead.py --rounds 3 --json out.json

Both arms train a LoRA adapter with TRL's ``SFTTrainer`` on the bundled
SmolLM2-135M, in this process, on the same rows, with the same TRL arguments
(``opsloop.finetune._training.trainer_args``: steps, batch, length, learning
rate, checkpoint interval):

- **plain TRL**: the model loaded from the same converted weights,
  ``SFTTrainer(...).train()``, nothing else;
- **opsloop job**: ``client.finetune.run(...)`` in the foreground: the job's
  state changes, heartbeats, cancel checks, the run's metrics (loss, learning
  rate, tokens/s, wall time) and checkpoint bookkeeping, then the adapter
  registered as a version.

``--threads 1`` is what the figures in docs/finetune.md used: on a machine
shared with other work, two-thread torch spins badly when the cores are busy.

Tokens per second is the trainer's own count of training tokens
(``num_tokens``) over its own ``train_runtime`` in both arms, so model
loading, dataset reading and registration sit outside the figure; what
remains is what the job adds to every step. Arms alternate (in both
orders) over ``--rounds`` rounds and the best round of each counts, so a burst of load
from elsewhere on the machine does not decide the ratio. The goal: the job
at most 5% fewer tokens per second than plain TRL.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json

# benchmarks/datasets.py would shadow Hugging Face `datasets` (which TRL imports).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

SIZES: dict[str, dict[str, Any]] = {
    "small": {"max_steps": 8, "batch_size": 2, "max_length": 64, "checkpoint_every": 4},
    "larger": {"max_steps": 16, "batch_size": 4, "max_length": 128, "checkpoint_every": 8},
}


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "prompt": f"Question {i}: what is {i} plus {i + 1}, and why does it matter here?",
            "completion": f"{i} plus {i + 1} is {2 * i + 1}. "
            + "It matters because every step of the sum is checked twice. " * (1 + i % 3),
        }
        for i in range(n)
    ]


def plain_trl(
    hf_folder: Path, rows: list[dict[str, Any]], spec: Any, out: Path
) -> dict[str, float]:
    """The baseline: a plain TRL script on the same weights, rows and arguments."""
    import datasets as hf_datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from opsloop.finetune._training import lora_config, trainer_args

    hf_datasets.disable_progress_bars()
    tok = AutoTokenizer.from_pretrained(str(hf_folder))
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(str(hf_folder))
    chat = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "completion": [{"role": "assistant", "content": r["completion"]}],
        }
        for r in rows
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(**trainer_args(spec, out, device="cpu")),
            train_dataset=hf_datasets.Dataset.from_list(chat),
            processing_class=tok,
            peft_config=lora_config(spec),
        )
        trainer.remove_callback(PrinterCallback)
        t = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t
    logs = trainer.state.log_history
    tokens = max(float(e["num_tokens"]) for e in logs if "num_tokens" in e)
    runtime = next(float(e["train_runtime"]) for e in reversed(logs) if "train_runtime" in e)
    return {"tokens": tokens, "train_runtime_s": runtime, "wall_s": wall, "tok_s": tokens / runtime}


def opsloop_job(client: Any, dataset: str, spec_kw: dict[str, Any]) -> dict[str, float]:
    t = time.perf_counter()
    job = client.finetune.run(**spec_kw, dataset=dataset)
    wall = time.perf_counter() - t
    if job.state != "succeeded":
        raise RuntimeError(f"job {job.id} {job.state}: {job.error}")
    run = client.get_run(job.run_id)
    tokens = run.metrics["num_tokens"].max
    runtime = run.metrics["train_runtime"].value
    hooks = run.metrics["job_hooks_s"].value
    return {
        "tokens": tokens,
        "train_runtime_s": runtime,
        "wall_s": wall,
        "tok_s": tokens / runtime,
        "hooks_s": hooks,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="Override each setting's max_steps.")
    p.add_argument("--threads", type=int, default=None, help="torch threads (both arms).")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    import opsloop
    from opsloop.finetune import JobSpec
    from opsloop.registry import LoadedCausalLM, bundled_gguf, load_model
    from opsloop.settings import Settings

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-ft-bench-") as tmp:
        root = Path(tmp)
        client = opsloop.Client(settings=Settings(home=root / "home"))
        mv = client.registry.register(
            "smol", bundled_gguf("smollm2"), flavor="transformers", options={"model_id": "smol"}
        )
        cache = root / "cache"
        lm = load_model(mv.uri, client=client, cache_dir=cache, device="cpu")
        assert isinstance(lm, LoadedCausalLM)
        hf_folder = Path(lm.model.name_or_path)  # the converted weights both arms load
        del lm
        rows = _rows(args.rows)
        client.datasets.create("bench", rows)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{platform.processor() or platform.machine()}"
        )
        for size in args.sizes:
            setting = dict(SIZES[size])
            if args.steps:
                setting["max_steps"] = args.steps
                setting["checkpoint_every"] = max(1, args.steps // 2)
            kw = {"base_model": mv.uri, "cache_dir": str(cache), "device": "cpu", **setting}
            spec = JobSpec.model_validate({**kw, "dataset": "bench"})
            best: dict[str, dict[str, float]] = {}
            for r in range(args.rounds):
                arms = ("plain", "opsloop") if r % 2 == 0 else ("opsloop", "plain")
                for arm in arms:  # the order alternates too: neither arm always runs warm
                    if arm == "plain":
                        m = plain_trl(hf_folder, rows, spec, root / f"plain-{size}-{r}")
                    else:
                        m = opsloop_job(client, "bench", {**kw, "output_model": f"bench-{size}"})
                    print(
                        f"  {size:6s} round {r + 1} {arm:8s} {m['tok_s']:8.1f} tok/s "
                        f"({m['tokens']:.0f} tokens in {m['train_runtime_s']:.1f}s; "
                        f"wall {m['wall_s']:.1f}s"
                        + (f"; {m['hooks_s']:.3f}s in the job's hooks)" if "hooks_s" in m else ")"),
                        flush=True,
                    )
                    if arm not in best or m["tok_s"] > best[arm]["tok_s"]:
                        best[arm] = m
            ratio = best["opsloop"]["tok_s"] / best["plain"]["tok_s"]
            results.append(
                {
                    "size": size,
                    **setting,
                    "plain_tok_s": best["plain"]["tok_s"],
                    "opsloop_tok_s": best["opsloop"]["tok_s"],
                    "ratio": ratio,
                    "opsloop_hooks_s": best["opsloop"]["hooks_s"],
                    "opsloop_train_runtime_s": best["opsloop"]["train_runtime_s"],
                    "overhead_pct": (1 - ratio) * 100,
                }
            )
        client.close()

    print()
    print(f"{'setting':28s} {'plain TRL tok/s':>16s} {'opsloop job tok/s':>18s} {'ratio':>7s}")
    for res in results:
        label = f"{res['size']} ({res['max_steps']}x{res['batch_size']}x{res['max_length']})"
        print(
            f"{label:28s} {res['plain_tok_s']:16.1f} {res['opsloop_tok_s']:18.1f} "
            f"{res['ratio']:7.3f}  (job overhead {res['overhead_pct']:+.1f}%; goal <= 5%)"
        )
        share = res["opsloop_hooks_s"] / res["opsloop_train_runtime_s"] * 100
        print(
            f"{'':28s} time in the job's trainer hooks: {res['opsloop_hooks_s']:.3f}s of "
            f"{res['opsloop_train_runtime_s']:.1f}s training ({share:.2f}%)"
        )
    if args.json:
        write_json(args.json, {"results": results})
        print(f"wrote {args.json}")
    else:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
