"""Close the loop: serve a model, collect feedback on its answers, fine-tune, evaluate, promote.

``run_loop(client, train=..., heldout=..., index=...)`` runs every stage
through the other rooms' public surfaces and returns a ``LoopReport``:
held-out quality of version 1 and version 2, the gain with its paired
bootstrap interval and p-value, the gate's decision, the time of each stage
and the id of every artifact. ``check_lineage(client, report)`` walks the
links trace -> annotation -> dataset version -> job run -> model version ->
evaluation -> alias move and names any that is missing. The second half's
stages (``finetune_version``, ``evaluate_versions``, ``gate_and_promote``) are
public on their own: the shipped workflow
``opsloop.workflows.shipped:feedback_loop`` runs them on real users' feedback,
with ``loop_client(context)`` where no ``opsloop.Client`` is at hand. ``opsloop loop run``
(the CLI hub) runs it on the quickstart's docs question set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.loop._improve import (
        GATE_METRIC,
        GATE_MIN,
        QUALITY_METRIC,
        Compared,
        Decision,
        LoopClient,
        Tuned,
        evaluate_versions,
        finetune_version,
        gate_and_promote,
        loop_client,
        rag_pipeline,
    )
    from opsloop.loop._lineage import LineageCheck, check_lineage
    from opsloop.loop._loop import (
        DEFAULT_TRAINING,
        LOOP_EXPERIMENT,
        STAGES,
        LoopArtifacts,
        LoopReport,
        check_loop_arguments,
        run_loop,
    )

__all__ = [
    "DEFAULT_TRAINING",
    "GATE_METRIC",
    "GATE_MIN",
    "LOOP_EXPERIMENT",
    "QUALITY_METRIC",
    "STAGES",
    "Compared",
    "Decision",
    "LineageCheck",
    "LoopArtifacts",
    "LoopClient",
    "LoopReport",
    "Tuned",
    "check_lineage",
    "check_loop_arguments",
    "evaluate_versions",
    "finetune_version",
    "gate_and_promote",
    "loop_client",
    "rag_pipeline",
    "run_loop",
]

# Each name loads its module on first use: the package itself imports nothing, so
# reading the room's declaration (the CLI, opsloop.rooms) stays light.
_LAZY = {
    "DEFAULT_TRAINING": "opsloop.loop._loop",
    "GATE_METRIC": "opsloop.loop._improve",
    "GATE_MIN": "opsloop.loop._improve",
    "LOOP_EXPERIMENT": "opsloop.loop._loop",
    "QUALITY_METRIC": "opsloop.loop._improve",
    "STAGES": "opsloop.loop._loop",
    "Compared": "opsloop.loop._improve",
    "Decision": "opsloop.loop._improve",
    "LineageCheck": "opsloop.loop._lineage",
    "LoopArtifacts": "opsloop.loop._loop",
    "LoopClient": "opsloop.loop._improve",
    "LoopReport": "opsloop.loop._loop",
    "Tuned": "opsloop.loop._improve",
    "check_lineage": "opsloop.loop._lineage",
    "check_loop_arguments": "opsloop.loop._loop",
    "evaluate_versions": "opsloop.loop._improve",
    "finetune_version": "opsloop.loop._improve",
    "gate_and_promote": "opsloop.loop._improve",
    "loop_client": "opsloop.loop._improve",
    "rag_pipeline": "opsloop.loop._improve",
    "run_loop": "opsloop.loop._loop",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
