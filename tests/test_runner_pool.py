"""Local process pools: a script without a ``__main__`` guard that starts one gets an error
saying why and what to do (it died with a bare BrokenProcessPool); a shared pool serves
several task lists with the same workers."""

import subprocess
import sys
from pathlib import Path

from bayes_hcc.runner import run_tasks, shared_pool

SCRIPT = """
from bayes_hcc.runner import run_tasks
print(run_tasks(abs, [("a", -1), ("b", -2)], workers=2, progress=False))
"""


def test_unguarded_script_is_told_about_the_main_guard(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    # The error ends the traceback; multiprocessing's resource tracker may print a warning
    # about leaked semaphores after it (seen on a loaded machine), so skip those lines.
    lines = [ln for ln in proc.stderr.strip().splitlines()
             if "resource_tracker" not in ln and not ln.startswith("  warnings.warn(")]
    last = lines[-1]
    assert last.startswith("bayes_hcc.errors.BayesHCCError: the process pool broke")
    assert 'if __name__ == "__main__":' in last
    guarded = tmp_path / "guarded.py"
    guarded.write_text("if __name__ == '__main__':\n" + "".join(
        f"    {line}\n" for line in SCRIPT.strip().splitlines()))
    ok = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True,
                        timeout=300, cwd=tmp_path)
    assert ok.returncode == 0 and "{'a': 1, 'b': 2}" in ok.stdout


def pid_and_double(x):
    import os
    import time

    time.sleep(0.05)  # long enough that both workers take tasks
    return [os.getpid(), 2 * x]


def test_a_shared_pool_runs_several_task_lists_on_the_same_workers():
    """A screened design or PPoS runs its pilot, then the rest: on one pool, the workers
    that imported and compiled for the pilot go on (they used to be started twice)."""
    import os

    tasks = [(f"t{i}", i) for i in range(8)]
    with shared_pool(2) as pool:
        first = run_tasks(pid_and_double, tasks, workers=2, progress=False, pool=pool)
        second = run_tasks(pid_and_double, tasks, workers=2, progress=False, pool=pool)
    pids = {r[0] for r in first.values()} | {r[0] for r in second.values()}
    assert len(pids) <= 2 and os.getpid() not in pids  # two workers in all, not four
    assert [r[1] for r in second.values()] == [2 * i for i in range(8)]
    with shared_pool(1) as pool:  # in-process: no pool to share
        assert pool is None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one exited but not yet reaped, a zombie, has not)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX")


PARKED = """
import os, sys, time
from pathlib import Path
from bayes_hcc.runner import run_tasks

def park(i):
    Path(sys.argv[1], f"worker{os.getpid()}").write_text("")
    time.sleep(60)
    return i

if __name__ == "__main__":
    try:
        run_tasks(park, [(f"t{i}", i) for i in range(8)], workers=2, progress=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def _parked_run(tmp_path):
    """A script running 8 tasks of 60 s on two workers, started with the default SIGINT
    handling (a notebook kernel's); returns the process and its two workers' pids once
    both are in a task."""
    import signal
    import time

    script = tmp_path / "parked.py"
    script.write_text(PARKED)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while len(list(tmp_path.glob("worker*"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(p.name[len("worker"):]) for p in tmp_path.glob("worker*")]
    if len(workers) != 2:
        proc.kill()
        raise AssertionError("the workers did not start")
    return proc, workers


def test_workers_end_when_the_process_that_started_them_is_killed(tmp_path):
    """A study killed from outside (SIGKILL: a notebook kernel restarted, a job
    cancelled) used to leave its pool's workers running their tasks, then waiting for
    ever; they now end within a few seconds of it."""
    import os
    import signal
    import time

    proc, workers = _parked_run(tmp_path)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        deadline = time.time() + 15
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        left = [w for w in workers if _alive(w)]
        for w in left:  # do not leave them to the next test
            os.kill(w, signal.SIGKILL)
        assert not left, f"workers {left} outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_interrupt_stops_the_run_and_its_workers(tmp_path):
    """Ctrl-C or a notebook's interrupt (SIGINT to the process that runs the tasks, not
    to its workers) used to wait for every queued task to run (8 tasks of 60 s on two
    workers: 4 minutes); the run now stops at once, its workers with it."""
    import signal
    import time

    proc, workers = _parked_run(tmp_path)
    try:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)  # one 60 s task would exceed it
        assert "interrupted" in out
        time.sleep(1)
        assert not [w for w in workers if _alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()


def started_then(x):
    import os
    import time
    from pathlib import Path

    folder, i = x
    Path(folder, f"task{i}").write_text(str(os.getpid()))
    if i == 0:
        raise ValueError("trial 0 failed")
    time.sleep(1.0)
    return i


def test_a_failing_task_cancels_the_tasks_not_started(tmp_path):
    """The first task's error reaches the caller without the other tasks running first
    (they all did, then the error came)."""
    import pytest

    tasks = [(f"t{i}", (str(tmp_path), i)) for i in range(12)]
    with pytest.raises(ValueError, match="trial 0 failed"):
        run_tasks(started_then, tasks, workers=2, progress=False)
    # the two running and those already handed to the pool's queue may start, not all 12
    assert len(list(tmp_path.glob("task*"))) <= 6
