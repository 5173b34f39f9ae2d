"""The tracking room's commands: ``opsloop experiments ...`` and ``opsloop runs ...``."""

from __future__ import annotations

from opsloop.tracking._cli_compare import compare
from opsloop.tracking._cli_experiments import app as experiments_app
from opsloop.tracking._cli_runs import app as runs_app

runs_app.command("compare")(compare)

__all__ = ["experiments_app", "runs_app"]
