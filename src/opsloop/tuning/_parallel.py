"""Trials in several processes of this machine, or as tasks on a Ray cluster.

Every worker joins the study through its shared Optuna storage and logs its
trials through the run-logging client of its own ``Context`` built from the driver's settings
(embedded on the same home, or a server URL). The driver splits ``n_trials``
between the workers, so the study ends with exactly that many trials.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import time
from concurrent.futures import ProcessPoolExecutor

from opsloop.core import Context
from opsloop.errors import InvalidArgument, Unavailable
from opsloop.settings import Settings
from opsloop.tracking import Tracking
from opsloop.tuning._runner import Objective, Runner, StudyConfig


def split(n_trials: int | None, workers: int) -> list[int | None]:
    """``n_trials`` shared out as evenly as possible (``None``: each runs until the timeout)."""
    if n_trials is None:
        return [None] * workers
    base, extra = divmod(n_trials, workers)
    return [base + (1 if i < extra else 0) for i in range(workers) if base + (i < extra) > 0]


def run_worker(payload: bytes) -> int:
    """A worker's whole life: join the study, run its share of trials, flush, report how many."""
    config, objective, n_trials, deadline, catch = pickle.loads(payload)
    return _run(config, objective, n_trials, deadline, catch)


def _run(
    config: StudyConfig,
    objective: Objective,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[Exception], ...],
) -> int:
    # The worker's own context on the driver's settings (the same home, or the same server).
    ctx = Context(Settings(**config.settings))
    try:
        if config.optuna_verbosity is not None:
            import optuna

            optuna.logging.set_verbosity(config.optuna_verbosity)
        runner = Runner(config, ctx.room(Tracking))
        if runner.study.sampler is not None:
            # Seeded samplers would otherwise propose the same first trials in every worker.
            runner.study.sampler.reseed_rng()
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        before = len(runner.study.get_trials(deepcopy=False))
        runner.optimize(objective, n_trials=n_trials, timeout=timeout, catch=catch)
        return len(runner.study.get_trials(deepcopy=False)) - before
    finally:
        ctx.close()  # flushes the run-logging client's points


def _payload(
    config: StudyConfig,
    objective: Objective,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[Exception], ...],
) -> bytes:
    try:
        return pickle.dumps((config, objective, n_trials, deadline, catch))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidArgument(
            "backend='processes' needs an objective defined at module level (importable by name), "
            f"and a picklable sampler and pruner: {exc}"
        ) from None


def run_processes(
    config: StudyConfig,
    objective: Objective,
    *,
    n_trials: int | None,
    deadline: float | None,
    workers: int,
    catch: tuple[type[Exception], ...],
) -> None:
    """Run the trials in ``workers`` fresh processes (spawned: no state leaks from the driver)."""
    shares = split(n_trials, workers)
    payloads = [_payload(config, objective, n, deadline, catch) for n in shares]
    with ProcessPoolExecutor(max_workers=len(payloads), mp_context=mp.get_context("spawn")) as ex:
        futures = [ex.submit(run_worker, p) for p in payloads]
        errors = []
        for f in futures:
            try:
                f.result()
            except Exception as exc:
                errors.append(exc)
    if errors:
        raise errors[0]


def run_ray(
    config: StudyConfig,
    objective: Objective,
    *,
    n_trials: int | None,
    deadline: float | None,
    workers: int | None,
    catch: tuple[type[Exception], ...],
    address: str | None = None,
    num_cpus_per_worker: float = 1.0,
) -> None:
    """Run the trials as Ray tasks; starts (or joins, with ``address``) a Ray cluster."""
    try:
        import ray
    except ImportError:
        raise InvalidArgument("backend='ray' needs Ray: pip install 'opsloop[ray]'") from None
    if not config.storage.persistent:
        raise InvalidArgument("backend='ray' needs a persistent study storage, not 'memory'")
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ... by version
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Unavailable(
                f"cannot start or join {where}: {reason[:300]}. Start one with "
                "`ray start --head` and pass its address (--ray-address / ray_address=), "
                "or leave the address out (and unset RAY_ADDRESS) to start one here",
                details={"address": address, "error": type(exc).__name__},
            ) from None
    if workers is None or workers < 1:
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        workers = max(1, int(cpus // num_cpus_per_worker))
    task = ray.remote(num_cpus=num_cpus_per_worker, max_retries=0)(_ray_worker)
    refs = [task.remote(config, objective, n, deadline, catch) for n in split(n_trials, workers)]
    ray.get(refs)


def _ray_worker(
    config: StudyConfig,
    objective: Objective,
    n_trials: int | None,
    deadline: float | None,
    catch: tuple[type[Exception], ...],
) -> int:
    return _run(config, objective, n_trials, deadline, catch)
