"""The fine-tuning room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Room

ROOM = Room(
    name="finetune",
    doc="Fine-tuning jobs: LoRA SFT and DPO on a registered base model, resumable and cancellable.",
    tables=("opsloop.finetune._tables",),
    routers=("opsloop.finetune.api:router",),
    cli_groups=(("finetune", "opsloop.finetune.cli:app"),),
    client=ClientProperty("finetune", "opsloop.finetune:Finetune"),
)
