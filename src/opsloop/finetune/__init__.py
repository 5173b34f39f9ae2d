"""Fine-tuning jobs: LoRA supervised fine-tuning and DPO preference tuning on a registered base model.

A job trains a PEFT LoRA adapter with TRL on a dataset version, in a worker
process (or in the foreground); it is a tracking run with explicit states
(``validating``, ``queued``, ``running``, ``succeeded``, ``failed``,
``cancelled``), checkpoints, resume after a crash, and cancel. The result is
a registry version holding the adapter alone, pinned to its base version;
``Finetune.merge`` registers the merged full model. ``import opsloop.finetune``
is cheap: torch, transformers and TRL load only when a job trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.finetune._backend import EmbeddedFinetune, FinetuneBackend, finetune_service
    from opsloop.finetune._client import Finetune
    from opsloop.finetune._remote import RemoteFinetune
    from opsloop.finetune._service import FinetuneService
    from opsloop.finetune._tables import finetune_jobs as finetune_jobs_table
    from opsloop.finetune.entities import TERMINAL_STATES, FinetuneJob, JobSpec, JobState, Method

__all__ = [
    "TERMINAL_STATES",
    "EmbeddedFinetune",
    "Finetune",
    "FinetuneBackend",
    "FinetuneJob",
    "FinetuneService",
    "JobSpec",
    "JobState",
    "Method",
    "RemoteFinetune",
    "finetune_jobs_table",
    "finetune_service",
]

_LAZY = {name: "opsloop.finetune.entities" for name in __all__}
_LAZY.update(
    EmbeddedFinetune="opsloop.finetune._backend",
    FinetuneBackend="opsloop.finetune._backend",
    finetune_service="opsloop.finetune._backend",
    Finetune="opsloop.finetune._client",
    RemoteFinetune="opsloop.finetune._remote",
    FinetuneService="opsloop.finetune._service",
    finetune_jobs_table="opsloop.finetune._tables",
)
_RENAMED = {"finetune_jobs_table": "finetune_jobs"}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__, _RENAMED)
