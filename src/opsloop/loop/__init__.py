"""Close the loop: serve a model, collect feedback on its answers, fine-tune, evaluate, promote.

``run_loop(client, train=..., heldout=..., index=...)`` runs every stage
through the other rooms' public surfaces and returns a ``LoopReport``:
held-out quality of version 1 and version 2, the gain with its paired
bootstrap interval and p-value, the gate's decision, the time of each stage
and the id of every artifact. ``check_lineage(client, report)`` walks the
links trace -> annotation -> dataset version -> job run -> model version ->
evaluation -> alias move and names any that is missing. ``opsloop loop run``
(the CLI hub) runs it on the quickstart's docs question set.
"""

from opsloop.loop._lineage import LineageCheck, check_lineage
from opsloop.loop._loop import (
    DEFAULT_TRAINING,
    GATE_METRIC,
    GATE_MIN,
    LOOP_EXPERIMENT,
    QUALITY_METRIC,
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
    "LineageCheck",
    "LoopArtifacts",
    "LoopReport",
    "check_lineage",
    "check_loop_arguments",
    "run_loop",
]
