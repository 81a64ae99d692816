"""A stand-in for the Slurm client programs, so the Slurm executor plugin can be tested without a cluster.

Invoked as ``slurm_stub.py PROGRAM ARGS...`` by tiny wrappers named ``sbatch``, ``srun``, ``sacct``,
``squeue``, ``sacctmgr``, ``scontrol`` and ``sinfo`` that the test puts first on ``PATH``.
Every call is appended as one JSON line ``{"prog", "argv", "stdin"}`` to ``$FAKE_SLURM_DIR/calls.jsonl``.

- ``sbatch`` runs the job *synchronously* before it answers: the ``--wrap`` command (or the script
  given as a file or on stdin) runs under ``/bin/sh`` in the ``-D`` folder, with ``SLURM_JOB_ID``
  set (and ``SLURM_GPUS`` when ``--gpus``/``--gres=gpu`` was asked, as a GPU allocation would),
  output to ``--output`` with ``%j`` replaced. It then prints the job id as ``--parsable`` does
  (``<id>``, or ``<id>;<cluster>`` with ``--clusters``) and records the job's final state,
  COMPLETED or FAILED, under ``$FAKE_SLURM_DIR/jobs/<id>.json``. Running the job inside the
  submission means the plugin never sees a job pending, but every status query it makes finds
  the job finished, so a workflow advances as fast as its jobs run.
- ``srun`` (called by the job step inside a job) drops its options and runs the command.
- ``sacct`` / ``squeue`` print ``<id>|<STATE>`` for the recorded jobs whose ``--name`` matches.
- ``sacctmgr`` lists the accounts in ``$FAKE_SLURM_ACCOUNTS`` (comma-separated).
- ``scontrol show config`` and ``sinfo`` print a small, plausible cluster.

The stub's own settings use a ``FAKE_SLURM_`` prefix: the job step removes every inherited
``SLURM_*`` variable before it calls ``srun``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

STATE = Path(os.environ["FAKE_SLURM_DIR"])
FIRST_JOB_ID = 1001


@contextmanager
def _locked(name: str):
    """Serialise the stubs' read-modify-write steps: the plugin submits from two threads."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / name, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _record(prog: str, argv: list[str], stdin: str | None) -> None:
    with _locked("calls.jsonl") as fh:
        fh.write(json.dumps({"prog": prog, "argv": argv, "stdin": stdin}) + "\n")


def _next_job_id() -> int:
    with _locked("next_job_id") as fh:
        fh.seek(0)
        text = fh.read().strip()
        job_id = int(text) if text else FIRST_JOB_ID
        fh.seek(0)
        fh.truncate()
        fh.write(str(job_id + 1))
    return job_id


def _option(argv: list[str], *names: str) -> str | None:
    """Value of ``--name=value``, ``--name value`` or ``-n value`` (the last one given)."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                value = arg[len(name) + 1:]
            elif arg == name and i + 1 < len(argv):
                value = argv[i + 1]
    return value


def _asks_for_gpu(argv: list[str]) -> str | None:
    gpus = _option(argv, "--gpus", "-G")
    if gpus:
        return gpus.split(":")[-1]
    gres = _option(argv, "--gres") or ""
    if gres.startswith("gpu"):
        return gres.split(":")[-1] if gres.count(":") else "1"
    return None


def sbatch(argv: list[str], stdin: str | None) -> int:
    wrap = _option(argv, "--wrap")
    if wrap is not None:
        script = wrap
    else:
        # The batch script is the first positional argument (a file, possibly /dev/stdin, as
        # the plugin's pass_command_as_script mode gives it).
        positional = [a for a in argv if not a.startswith("-")]
        path = positional[-1] if positional else "/dev/stdin"
        script = stdin if path == "/dev/stdin" else Path(path).read_text()
    if not script:
        print("sbatch: error: no batch script and no --wrap", file=sys.stderr)
        return 1
    job_id = _next_job_id()
    name = _option(argv, "--job-name", "-J") or "sbatch"
    workdir = Path(_option(argv, "-D", "--chdir") or os.getcwd())
    output = (_option(argv, "--output", "-o") or "slurm-%j.out").replace("%j", str(job_id))
    env = {**os.environ, "SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id), "SLURM_JOB_NAME": name}
    gpus = _asks_for_gpu(argv)
    if gpus:
        env["SLURM_GPUS"] = gpus
    log = workdir / output
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        rc = subprocess.run(["/bin/sh", "-c", script], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    jobs = STATE / "jobs"
    jobs.mkdir(exist_ok=True)
    state = {"id": job_id, "name": name, "state": "COMPLETED" if rc == 0 else "FAILED", "exit_code": rc}
    (jobs / f"{job_id}.json").write_text(json.dumps(state))
    cluster = _option(argv, "--clusters", "-M")
    print(f"{job_id};{cluster}" if cluster else job_id)
    return 0


def srun(argv: list[str]) -> int:
    # Options come first, always as single tokens in the job step's call (-n1, --gpus=1, ...).
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    if i == len(argv):
        print("srun: error: no command", file=sys.stderr)
        return 1
    return subprocess.run(argv[i:]).returncode


def _job_states(argv: list[str]) -> list[dict]:
    name = _option(argv, "--name")
    states = [json.loads(p.read_text()) for p in sorted((STATE / "jobs").glob("*.json"))]
    return [s for s in states if name is None or s["name"] == name]


def sacct(argv: list[str]) -> int:
    step = _option(argv, "-j", "--jobs")
    if step is not None:  # failure reason / node list of one job: nothing to add
        return 0
    for s in _job_states(argv):
        print(f"{s['id']}|{s['state']}")
    return 0


def squeue(argv: list[str]) -> int:
    for s in _job_states(argv):
        print(f"{s['id']}|{s['state']}")
    return 0


def sacctmgr(argv: list[str]) -> int:
    for account in os.environ.get("FAKE_SLURM_ACCOUNTS", "").split(","):
        if account:
            print(account)
    return 0


def scontrol(argv: list[str]) -> int:
    if argv[:2] == ["show", "config"]:
        print("MaxArraySize            = 1001\nMinJobAge               = 300 sec")
    return 0


def sinfo(argv: list[str]) -> int:
    print("PARTITION")
    for partition in os.environ.get("FAKE_SLURM_PARTITIONS", "").split(","):
        if partition:
            print(partition)
    return 0


def main() -> int:
    prog, argv = sys.argv[1], sys.argv[2:]
    stdin = None
    if prog == "sbatch" and not os.isatty(0):
        stdin = sys.stdin.read()
    _record(prog, argv, stdin)
    if prog == "sbatch":
        return sbatch(argv, stdin)
    if prog == "srun":
        return srun(argv)
    handlers = {"sacct": sacct, "squeue": squeue, "sacctmgr": sacctmgr, "scontrol": scontrol, "sinfo": sinfo}
    if prog not in handlers:
        print(f"slurm stub: unknown program {prog!r}", file=sys.stderr)
        return 2
    return handlers[prog](argv)


if __name__ == "__main__":
    sys.exit(main())
