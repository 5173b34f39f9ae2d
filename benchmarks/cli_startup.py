"""How fast the ``opsloop`` command line starts: CPU and wall time of a few commands.

    .venv/bin/python benchmarks/cli_startup.py              # best of 5 per command
    .venv/bin/python benchmarks/cli_startup.py --repeat 9 --json out.json

Each command runs as its own process (``python -m opsloop.cli ...``, what the
``opsloop`` script does) on a fresh home folder made once (``opsloop db
upgrade``), so a listing reads an empty, up-to-date database. Printed per
command: the best of ``--repeat`` runs' CPU time (user + system, from
``os.wait4``) and wall time, and how many modules the command imported (from a
separate run that prints ``len(sys.modules)`` when it exits), next to the load
average. The reference row is ``python -c pass``: the floor any command pays.

Nothing here asserts a speed (tests/test_cli_startup.py checks what each
command imports).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json

# The commands a user runs most, then the root help (which loads every room's commands).
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("runs", "list"),
    ("datasets", "list"),
    ("models", "list"),
    ("traces", "list"),
    ("runs", "--help"),
    ("--help",),
)
HOME_COMMANDS = {"list"}

_COUNT = (
    "import atexit, os, runpy, sys\n"
    "atexit.register(lambda: os.write(2, f'MODULES={len(sys.modules)}\\n'.encode()))\n"
    "sys.argv = ['opsloop', *sys.argv[1:]]\n"
    "runpy.run_module('opsloop.cli', run_name='__main__')\n"
)


def _load() -> str:
    return (
        Path("/proc/loadavg").read_text().split(" ")[0] if Path("/proc/loadavg").exists() else "?"
    )


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def _modules(args: tuple[str, ...], env: dict[str, str]) -> int:
    res = subprocess.run(
        [sys.executable, "-c", _COUNT, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = [x for x in res.stderr.splitlines() if x.startswith("MODULES=")]
    return int(line[-1].split("=")[1]) if line else -1


def _bare_modules(env: dict[str, str]) -> int:
    res = subprocess.run(
        [sys.executable, "-c", "import sys; print(len(sys.modules))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(res.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (best is kept)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    env = {**os.environ, "COLUMNS": "100"}
    env.pop("OPSLOOP_TRACKING_URI", None)
    home = Path(tempfile.mkdtemp(prefix="opsloop-cli-startup-"))
    subprocess.run(
        [sys.executable, "-m", "opsloop.cli", "db", "upgrade", "--home", str(home)],
        env=env,
        check=True,
        capture_output=True,
    )

    rows: list[dict[str, object]] = []
    print(f"{'command':<28} {'cpu best':>9} {'wall best':>10} {'modules':>8}  load")
    cases: list[tuple[str, list[str], tuple[str, ...]]] = [("python -c pass", ["-c", "pass"], ())]
    for cmd in COMMANDS:
        extra = ("--home", str(home)) if cmd[-1] in HOME_COMMANDS else ()
        cases.append((f"opsloop {' '.join(cmd)}", ["-m", "opsloop.cli", *cmd, *extra], cmd + extra))
    for label, argv, cli_args in cases:
        load_before = _load()
        runs = [_run_once([sys.executable, *argv], env) for _ in range(args.repeat)]
        cpu = min(r[0] for r in runs)
        wall = min(r[1] for r in runs)
        modules = _modules(cli_args, env) if cli_args else _bare_modules(env)
        load = f"{load_before}->{_load()}"
        print(f"{label:<28} {cpu * 1e3:>7.0f}ms {wall * 1e3:>8.0f}ms {modules:>8}  {load}")
        rows.append(
            {"command": label, "cpu_s": cpu, "wall_s": wall, "modules": modules, "load": load}
        )
    if args.json:
        write_json(args.json, {"repeat": args.repeat, "rows": rows})


if __name__ == "__main__":
    main()
