"""Run many independent tasks (fits, simulated trials) in-process, on a local process pool
or on a Dask cluster, with a progress bar and an optional resumable JSON Lines store.

Every task carries its own key and seed, so the results do not depend on the engine, the
number of workers or the order in which tasks finish. Workers are spawned processes: each
compiles a model once (the on-disk PyTensor cache makes that quick after the first) and
reuses it for every task it receives.
"""

from __future__ import annotations

import json
import numbers
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from bayes_hcc.errors import BayesHCCError, user_path

__all__ = ["run_tasks", "default_workers", "read_store", "shared_pool"]


def default_workers() -> int:
    """All available cores (the CPUs this process may run on)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def read_store(path) -> dict:
    """Finished records of a JSON Lines store, by key (a torn last line is ignored: it is
    the record an interruption cut short, and it will be recomputed)."""
    path = user_path(path, "store", "a JSON-lines results file")
    out = {}
    if not path.exists():
        return out
    if path.is_dir():
        raise BayesHCCError(f"{path} is a directory; give a file name for the store "
                            "(e.g. design.jsonl).")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise BayesHCCError(f"{path} is not a JSON Lines store (not text).") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise BayesHCCError(f"{path}: line {i + 1} is not valid JSON; the store is "
                                "damaged (only its last line may be incomplete).") from None
        if not isinstance(rec, dict) or not {"key", "result"} <= set(rec):
            raise BayesHCCError(f"{path}: line {i + 1} is not a store record (an object with "
                                "'key' and 'result'); the store is damaged or not a store.")
        out[rec["key"]] = rec["result"]
    return out


def _truncate_torn_tail(path: Path) -> None:
    """Drop an incomplete last line so appended records start on a line of their own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _progress_bar(total: int, initial: int, desc: str, show: bool):
    """tqdm's bar (a widget in notebooks) when shown; the plain class when not, so that
    nothing tries to import notebook widgets for a bar nobody sees."""
    if show:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, disable=not show)


#: Why a spawned pool breaks in a script, and the fix.
MAIN_GUARD_HINT = (
    "worker processes are started with 'spawn', which re-imports the calling script: a "
    "script that calls this at top level must put its code under "
    "`if __name__ == \"__main__\":` (see the README), or pass workers=1.")


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Worker initializer: a daemon thread ends this worker once the process that started
    it is gone. A pool's workers otherwise outlive a parent stopped by SIGTERM or SIGKILL
    (a notebook kernel restarted, a job killed): each finishes its task at full CPU, then
    waits forever, holding its memory."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


@contextmanager
def spawn_pool(n: int):
    """A process pool of ``n`` spawned workers, which end when this process does; a pool
    broken because the calling script has no ``__main__`` guard is reported as such (not
    as BrokenProcessPool)."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"),
                                 initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as ex:
            yield ex
    except BrokenProcessPool as err:
        main = sys.modules.get("__main__")
        script = getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
        died = "a worker process died (out of memory, or killed): try fewer workers"
        hint = f"{MAIN_GUARD_HINT} Otherwise {died}." if script else f"{died}."
        raise BayesHCCError(f"the process pool broke ({err}): {hint}") from None


def check_workers(workers) -> int | None:
    """``workers`` as given when it is None (one per core) or a whole number >= 1; else a
    named error (0 meant every core, and a negative number failed inside the pool)."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise BayesHCCError(f"workers={workers!r}: give the number of processes, a whole "
                            "number >= 1 (1 runs in this process), or None for one per core.")
    return int(workers)


@contextmanager
def shared_pool(workers: int | None, client=None):
    """One local process pool for several ``run_tasks`` calls in a row (``pool=``), so
    that their workers start, import and compile once (a screened design's pilot and the
    rest; a screened PPoS's pilot and the rest). None when the tasks run in this process
    (``workers=1``) or on a Dask cluster (whose workers persist anyway)."""
    workers = check_workers(workers)
    if client is not None or (workers or default_workers()) <= 1:
        yield None
        return
    with spawn_pool(workers or default_workers()) as ex:
        yield ex


def run_tasks(fn: Callable, tasks: Sequence[tuple[str, object]], *, workers: int | None = 1,
              client=None, progress: bool = True, desc: str = "", store=None,
              meta: dict | None = None, unit: str = "task",
              postfix: Callable[[object], str] | None = None, pool=None) -> dict:
    """Run ``fn(payload)`` for every ``(key, payload)`` in ``tasks``; results by key.

    Parameters
    ----------
    fn : callable
        A module-level function (it is sent to other processes); its result must be
        JSON-serialisable when ``store`` is given.
    tasks : sequence of (str, object)
        Unique keys and picklable payloads (each payload carries its own seed).
    workers : int or None, default 1
        1 runs in this process; more uses a local process pool; None uses every core.
    client : dask.distributed.Client, optional
        Run on this Dask cluster instead of the local pool.
    progress : bool
        Show a progress bar (tqdm).
    store : path, optional
        JSON Lines file: each finished task is appended at once, and tasks already in the
        file are not recomputed (an interrupted run resumes). ``meta`` is written as the
        first record and must match on resume, so a store is never mixed across settings.
    unit : str
        What a task is, for the bar's rate: "<unit>s/min" counts the tasks computed in this
        run (not those resumed from the store) per minute of wall time.
    postfix : callable, optional
        Called in this process with every finished task's result (those resumed from the
        store too, in task order first); what it returns is shown after the rate (e.g. a
        running share the results carry).
    pool : Executor, optional
        A pool from :func:`shared_pool` to run on instead of starting one (with
        ``workers`` > 1 and no ``client``).
    """
    workers = check_workers(workers)
    keys = [k for k, _ in tasks]
    if len(set(keys)) != len(keys):
        raise BayesHCCError("run_tasks: task keys must be unique.")
    done: dict = {}
    fh = None
    if store is not None:
        store = user_path(store, "store", "a JSON-lines results file")
        if store.is_dir():
            raise BayesHCCError(f"{store} is a directory; give a file name for the store "
                                "(e.g. design.jsonl).")
        store.parent.mkdir(parents=True, exist_ok=True)
        if store.exists():
            _truncate_torn_tail(store)
        done = read_store(store)
        head = done.pop("__meta__", None)
        wanted = None if meta is None else json.loads(json.dumps(meta, default=repr))
        if head is None and done and wanted is not None:
            raise BayesHCCError(
                f"{store}: this store has {len(done)} result(s) but no settings line (it was "
                "deleted or the file was not written by this run): results that cannot be "
                "tied to their plan, scenarios and seed are never reused. Use a new file.")
        if head is not None and wanted is not None and head != wanted:
            raise BayesHCCError(
                f"{store}: this store was written with different settings ({head}); use "
                "a new file (results are never overwritten).")
        fh = store.open("a")
        if head is None and meta is not None:
            fh.write(json.dumps({"key": "__meta__", "result": meta}, default=repr) + "\n")
            fh.flush()
    results = {k: done[k] for k in keys if k in done}
    todo = [(k, p) for k, p in tasks if k not in results]
    bar = _progress_bar(len(tasks), len(results), desc, progress)
    extra = ""
    if postfix is not None:
        for result in results.values():
            extra = postfix(result)
    start, computed = time.perf_counter(), 0

    def finish(key, result):
        nonlocal computed, extra
        results[key] = result
        if fh is not None:
            fh.write(json.dumps({"key": key, "result": result}) + "\n")
            fh.flush()
        computed += 1
        if postfix is not None:
            extra = postfix(result)
        if progress:
            rate = computed / max(time.perf_counter() - start, 1e-9) * 60
            bar.set_postfix_str(f"{rate:.1f} {unit}s/min" + (f", {extra}" if extra else ""),
                                refresh=False)
        bar.update()

    try:
        if client is not None:
            from dask.distributed import as_completed as dask_completed

            futures = {client.submit(fn, p, pure=False): k
                       for k, p in todo}
            try:
                for fut in dask_completed(futures):
                    finish(futures[fut], fut.result())
            except BaseException:
                client.cancel(list(futures))  # the rest of this run, not the cluster
                raise
        elif (workers or default_workers()) <= 1 or (len(todo) <= 1 and pool is None):
            for k, p in todo:
                finish(k, fn(p))
        elif pool is not None:
            _run_on(pool, fn, todo, finish)
        else:
            with spawn_pool(min(workers or default_workers(), len(todo))) as ex:
                _run_on(ex, fn, todo, finish)
    finally:
        bar.close()
        if fh is not None:
            fh.close()
    return {k: results[k] for k in keys}


def _run_on(ex, fn, todo, finish) -> None:
    """Run on a local pool. When a task fails or the run is interrupted (Ctrl-C, a
    notebook's interrupt), the tasks not started are cancelled (leaving the pool's block
    used to wait for every one of them to run first); on an interrupt the workers are
    also stopped, so the tasks running end too. Finished tasks are in the store."""
    futures = {ex.submit(fn, p): k for k, p in todo}
    try:
        for fut in as_completed(futures):
            finish(futures[fut], fut.result())
    except BaseException as err:
        for fut in futures:
            fut.cancel()
        if isinstance(err, KeyboardInterrupt):
            workers = getattr(ex, "_processes", None) or {}  # CPython's pid -> Process
            for proc in list(workers.values()):
                proc.terminate()
        raise
