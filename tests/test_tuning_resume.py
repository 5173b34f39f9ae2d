"""A study survives ``kill -9``: re-running it continues from its finished trials.

A real process runs the study and is SIGKILLed in the middle of a trial.
Running the same script again must fail the dead trial (its run KILLED),
run it again with the same params, and end with exactly ``n_trials``
complete trials, none of them twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsloop import Client
from opsloop.tuning import Tuning
from tests._procs import LineReader, kill, run_script, start_script

pytest.importorskip("optuna")

# argv: home, n_trials, the trial number that hangs (-1: none), heartbeat seconds (0: off).
STUDY_SCRIPT = r"""
import json, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from opsloop import Client
from opsloop.tuning import Float, Tuning
home, n, hang, hb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = Client(home=home)
study = Tuning(c).create_study(
    "crash", directions="minimize", search_space={"x": Float(-5, 5)},
    sampler={"type": "random", "seed": 0}, heartbeat_s=hb or None,
)
def objective(trial):
    trial.report(trial.params["x"] ** 2, 0)
    print(f"start {trial.number} {trial.params['x']!r}", flush=True)
    if trial.number == hang:
        time.sleep(600)
    return trial.params["x"] ** 2
summary = study.optimize(objective, n_trials=n)
c.close()
print("done " + json.dumps(summary.counts), flush=True)
"""


def _kill_during_trial(home: Path, hang: int, hb: int) -> float:
    """Run the study until trial ``hang`` has started, then SIGKILL it; return that trial's x.

    With a heartbeat, the kill waits two beats: Optuna's heartbeat thread writes
    its first beat concurrently with the objective's start, and a trial killed
    before any beat has nothing to go stale by.
    """
    import time

    proc = start_script(STUDY_SCRIPT, home, 10, hang, hb)
    lines = LineReader(proc.stdout)  # type: ignore[arg-type]
    try:
        while True:
            line = lines.next(timeout=90)
            assert line is not None, proc.stderr.read() if proc.stderr else ""
            if line.startswith(f"start {hang} "):
                x = float(line.split()[2])
                break
        if hb:
            time.sleep(2 * hb)
    finally:
        kill(proc)
    return x


def _optuna_trials(home: Path) -> list[object]:
    import optuna

    return optuna.load_study(
        study_name="crash", storage=f"sqlite:///{home / 'tuning.db'}"
    ).get_trials()


def _check_resumed(home: Path, dead: int, x: float, n: int) -> None:
    import optuna

    TS = optuna.trial.TrialState
    trials = _optuna_trials(home)
    complete = [t for t in trials if t.state == TS.COMPLETE]  # type: ignore[attr-defined]
    assert len(complete) == n
    assert len({t.number for t in complete}) == n  # type: ignore[attr-defined]
    assert [t.number for t in trials if t.state == TS.FAIL] == [dead]  # type: ignore[attr-defined]
    assert not [t for t in trials if t.state in (TS.RUNNING, TS.WAITING)]  # type: ignore[attr-defined]
    # The dead trial ran again, once, with its params; no other trial has them.
    again = [t for t in complete if t.system_attrs.get("failed_trial") == dead]  # type: ignore[attr-defined]
    assert len(again) == 1 and again[0].params == {"x": x}  # type: ignore[attr-defined]
    assert sum(t.params["x"] == x for t in trials) == 2  # type: ignore[attr-defined]

    with Client(home=home) as c:
        study = Tuning(c).get_study_info("crash")
        runs = c.search_runs(parent_run_id=study.run_id, max_results=100).runs
        by_number = {int(r.tags["opsloop.tuning.trial"]): r for r in runs}
        assert sorted(by_number) == sorted(t.number for t in trials)  # type: ignore[attr-defined]
        killed = by_number[dead]
        assert killed.status == "KILLED"
        assert killed.tags["opsloop.tuning.state"] == "FAIL"
        assert (
            "died" in killed.tags["opsloop.tuning.error"]
            or "heartbeat" in killed.tags["opsloop.tuning.error"]
        )
        others = [r for num, r in by_number.items() if num != dead]
        assert {r.status for r in others} == {"FINISHED"}
        assert {r.tags["opsloop.tuning.state"] for r in others} == {"COMPLETE"}
        assert c.get_run(study.run_id).status == "FINISHED"
        summary = Tuning(c).summary("crash")
        assert summary.counts == {"COMPLETE": n, "FAIL": 1}


@pytest.mark.slow
def test_study_resumes_after_sigkill(home: Path) -> None:
    x = _kill_during_trial(home, hang=3, hb=0)
    # Killed mid-trial: three trials complete, the fourth RUNNING in Optuna and in opsloop.
    import optuna

    states = [t.state for t in _optuna_trials(home)]  # type: ignore[attr-defined]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert states.count(optuna.trial.TrialState.RUNNING) == 1

    done = run_script(STUDY_SCRIPT, home, 6, -1, 0, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1].removeprefix("done ")) == {
        "COMPLETE": 6,
        "FAIL": 1,
    }
    _check_resumed(home, dead=3, x=x, n=6)

    # Running it again (here, in this process) changes nothing: the study is complete.
    from opsloop.tuning import Float

    with Client(home=home) as c:
        study = Tuning(c).create_study(
            "crash", directions="minimize", search_space={"x": Float(-5, 5)}
        )
        assert study.optimize(lambda t: 0.0, n_trials=6).counts == {"COMPLETE": 6, "FAIL": 1}
    _check_resumed(home, dead=3, x=x, n=6)


@pytest.mark.slow
def test_a_trial_of_another_machine_goes_stale_through_the_heartbeat(home: Path) -> None:
    import time

    x = _kill_during_trial(home, hang=1, hb=1)
    # Pretend the dead trial ran on another machine: its pid cannot be checked
    # from here, so only its silent heartbeat can tell it is gone.
    with Client(home=home) as c:
        study = Tuning(c).get_study_info("crash")
        (run,) = c.search_runs(
            parent_run_id=study.run_id, filter='tags."opsloop.tuning.trial" = "1"'
        ).runs
        c.set_tag(run.id, "opsloop.tuning.owner", "another-machine:4242:1.00")
    time.sleep(3.5)  # past the grace period (3 heartbeats)
    done = run_script(STUDY_SCRIPT, home, 4, -1, 1, timeout=180)
    assert done.returncode == 0, done.stderr
    _check_resumed(home, dead=1, x=x, n=4)
