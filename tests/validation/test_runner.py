"""The task runner: same results in-process and in a process pool; resumable store."""

import json

import pytest

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.runner import read_store, run_tasks


def square(x):
    return {"value": x * x}


def test_pool_gives_the_same_results_as_in_process():
    tasks = [(f"t{i}", i) for i in range(6)]
    serial = run_tasks(square, tasks, workers=1, progress=False)
    pooled = run_tasks(square, tasks, workers=2, progress=False)
    assert serial == pooled
    assert list(serial) == [k for k, _ in tasks]  # task order, not completion order


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    store = tmp_path / "runs.jsonl"
    tasks = [(f"t{i}", i) for i in range(5)]
    run_tasks(square, tasks[:3], store=store, meta={"kind": "demo"}, progress=False)
    # an interruption can leave a half-written last line
    with store.open("a") as fh:
        fh.write('{"key": "t3", "res')
    seen = []

    def counting(x):
        seen.append(x)
        return square(x)

    out = run_tasks(counting, tasks, store=store, meta={"kind": "demo"}, progress=False)
    assert seen == [3, 4]  # finished tasks were not recomputed
    assert out == {f"t{i}": {"value": i * i} for i in range(5)}
    lines = store.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # the torn line is gone
    assert read_store(store)["t4"] == {"value": 16}


def test_store_from_other_settings_is_refused(tmp_path):
    store = tmp_path / "runs.jsonl"
    run_tasks(square, [("a", 1)], store=store, meta={"n": 1}, progress=False)
    with pytest.raises(BayesHCCError, match="different settings"):
        run_tasks(square, [("a", 1)], store=store, meta={"n": 2}, progress=False)


def test_duplicate_keys_are_an_error():
    with pytest.raises(BayesHCCError, match="unique"):
        run_tasks(square, [("a", 1), ("a", 2)], progress=False)


def test_the_bar_shows_the_rate_per_minute_and_the_callers_running_summary(capsys, tmp_path):
    """The bar shows tasks computed per minute and what ``postfix`` returns; postfix sees
    every result, those resumed from the store too (a resumed run's share is of all)."""
    store = tmp_path / "runs.jsonl"
    tasks = [(f"t{i}", i) for i in range(4)]
    run_tasks(square, tasks[:2], store=store, progress=False)
    seen = []

    def share(result):
        seen.append(result["value"])
        return f"odd {sum(v % 2 for v in seen)}/{len(seen)}"

    out = run_tasks(square, tasks, store=store, progress=True, desc="demo", unit="trial",
                    postfix=share)
    assert sorted(seen) == [0, 1, 4, 9] and len(out) == 4
    err = capsys.readouterr().err
    assert "trials/min" in err and "odd 2/4" in err
