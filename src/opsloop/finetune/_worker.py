"""``python -m opsloop.finetune._worker JOB_ID``: the process that trains one job.

Started by ``FinetuneService.launch`` with the launcher's settings in
``OPSLOOP_FINETUNE_SETTINGS``. SIGTERM (a cancel) stops training after the
current step; SIGKILL leaves the job ``running`` with a dead worker, which
``resume`` restarts from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from types import FrameType

from opsloop.core import Context
from opsloop.finetune._service import SETTINGS_ENV
from opsloop.finetune._training import STOP, run_job
from opsloop.settings import Settings


def _stop(signum: int, frame: FrameType | None) -> None:
    STOP.set()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m opsloop.finetune._worker JOB_ID", file=sys.stderr)
        return 2
    raw = os.environ.pop(SETTINGS_ENV, None)
    settings = Settings(**json.loads(raw)) if raw else Settings()
    signal.signal(signal.SIGTERM, _stop)
    ctx = Context(settings)
    try:
        job = run_job(ctx, args[0], worker=True)
    finally:
        ctx.close()
    print(f"job {job.id}: {job.state}" + (f" ({job.error})" if job.error else ""), flush=True)
    return 0 if job.state in ("succeeded", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
