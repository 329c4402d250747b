"""The audit log is a hash chain: deleted, reordered, inserted, edited, incomplete and
forged records are reported by line number; verify_log re-runs every record by default."""

import json
from pathlib import Path

import pytest

import bayes_hcc as bh
from bayes_hcc.monitoring.interim import append_record, record_digest

PLAN = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"


@pytest.fixture(scope="module")
def log_lines(tmp_path_factory, example_trial):
    """Three records: look 1 twice (two seeds) and look 2, fast."""
    log = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    plan = bh.load_plan(PLAN)
    for look, seed in ((1, 1), (1, 2), (2, 3)):
        bh.interim_analysis(example_trial, plan, look=look, fast=True, random_seed=seed,
                            log=log)
    return log.read_text().splitlines()


def _write(tmp_path, lines):
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _problems(path, trial, **kw):
    return bh.verify_log(path, trial, PLAN, rerun=False, **kw)["problems"]


def test_intact_log_reproduces_every_record(tmp_path, log_lines, example_trial):
    out = bh.verify_log(_write(tmp_path, log_lines), example_trial, PLAN)
    assert out["reproduced"] and out["problems"] == []
    assert [r["line"] for r in out["records"]] == [1, 2, 3]
    recs = [json.loads(x) for x in log_lines]
    assert recs[0]["prev_sha256"] == "0" * 64
    assert recs[1]["prev_sha256"] == recs[0]["record_sha256"] == record_digest(recs[0])


def test_deleted_reordered_inserted_edited_records(tmp_path, log_lines, example_trial):
    a, b, c = log_lines
    assert _problems(_write(tmp_path, [a, c]), example_trial) == [
        "line 2: chain broken (the record it follows was deleted or edited)"]
    assert _problems(_write(tmp_path, [a, c, b]), example_trial)[0].startswith(
        "line 2: chain broken")
    assert "line 3: out of order (it follows the record on line 1" in \
        _problems(_write(tmp_path, [a, c, b]), example_trial)[1]
    assert _problems(_write(tmp_path, [a, b, a]), example_trial) == [
        "line 3: a first record in the middle of the log (records inserted or logs "
        "concatenated)"]
    edited = json.loads(b)
    edited["decision"] = "stop for efficacy"
    problems = _problems(_write(tmp_path, [a, json.dumps(edited), c]), example_trial)
    assert problems == ["line 2: edited (its content does not match its digest)"]
    incomplete = json.loads(b)
    del incomplete["probabilities"]
    assert _problems(_write(tmp_path, [a, json.dumps(incomplete), c]), example_trial) == [
        "line 2: incomplete record (missing probabilities)"]
    assert _problems(_write(tmp_path, [a, "[1, 2]", c]), example_trial)[0] == \
        "line 2: not a record (invalid JSON or not an object)"


def test_forged_record_with_a_valid_chain_does_not_reproduce(tmp_path, log_lines,
                                                             example_trial):
    """Whoever can write the file can extend the chain; re-running catches the forgery
    (a record with no probabilities used to be reported as reproduced)."""
    path = _write(tmp_path, log_lines)
    forged = {k: v for k, v in json.loads(log_lines[-1]).items()}
    forged.update(probabilities={}, decision="stop for efficacy")
    append_record(path, forged)
    out = bh.verify_log(path, example_trial, PLAN, record=-1)
    assert not out["reproduced"]
    assert "probabilities (keys)" in out["differences"] and "decision" in out["differences"]
    assert out["problems"] == ["line 4: does not reproduce (decision, probabilities (keys))"]
    # a forged flag that no look writes is reported, not re-run (bool_flags refuses it)
    append_record(path, {**json.loads(log_lines[-1]), "fast": "yes"})
    out = bh.verify_log(path, example_trial, PLAN, record=-1)
    assert out["problems"] == ["line 5: does not reproduce (fast)"]


def test_a_log_checked_against_other_data_or_another_plan_says_so(tmp_path, log_lines,
                                                                   example_trial):
    """Checked against another data transfer, every number of a record differs: the
    problem listed them all, as for an edited record; it now says first that the data (or
    the plan) are not the ones the look was run with."""
    path = _write(tmp_path, log_lines[:1])
    out = bh.verify_log(path, example_trial.to_unit("days"), PLAN)
    assert not out["reproduced"]
    (problem,) = out["problems"]
    assert problem.startswith("line 1: does not reproduce (data_fingerprint")
    assert "; the data differ (fingerprint " in problem and "in the log" in problem
    for name in ("monitoring.toml", "primary_os.toml"):
        text = (PLAN.parent / name).read_text()
        (tmp_path / name).write_text(text.replace("efficacy = 0.999", "efficacy = 0.99"))
    other = bh.load_plan(tmp_path / "monitoring.toml")
    out = bh.verify_log(path, example_trial, other)
    assert out["problems"] == [
        f"line 1: made with another plan (hash {bh.load_plan(PLAN).hash[:12]} in the log, "
        f"{other.hash[:12]} given): pass the plan the look was run under"]


def test_record_out_of_range_and_bad_paths(tmp_path, log_lines, example_trial):
    path = _write(tmp_path, log_lines)
    with pytest.raises(bh.BayesHCCError, match=r"record=3: the log has 3 record\(s\)"):
        bh.verify_log(path, example_trial, PLAN, record=3)
    with pytest.raises(bh.BayesHCCError, match="is a directory"):
        bh.verify_log(tmp_path, example_trial, PLAN)
    with pytest.raises(bh.BayesHCCError, match="is a directory"):
        bh.interim_analysis(example_trial, PLAN, look=1, fast=True, log=tmp_path)


def test_ppos_settings_at_a_look_without_a_ppos(tmp_path, log_lines, example_trial):
    """A PPoS method or completion model given to a look that computes no PPoS (no PPoS
    futility rule, ppos not asked; or the final analysis) was ignored without a word; it is
    refused before the fit. A record written before, which carries such a method, still
    verifies: the method had no effect, and the re-run leaves it out."""
    plan = bh.load_plan(PLAN)
    for kwargs, match in (
            ({"ppos_method": "normal"}, r"ppos_method is for the predictive probability of "
                                        r"success, and look 'interim 1' computes none \(it "
                                        r"has no PPoS futility rule\): pass ppos=True"),
            ({"completion_model": bh.IllnessDeath("weibull_ph")},
             r"completion_model is for the predictive probability"),
            ({"look": "final", "ppos": True, "ppos_method": "normal"},
             r"ppos=True and ppos_method are for the predictive probability of success, "
             r"and the final analysis has none \(its decision is the final rule on the "
             r"data\): leave them out\."),
            ({"ppos": True, "ppos_method": "laplace"},
             r"ppos_method='laplace'; choose one of mcmc, normal, fast")):
        look = kwargs.pop("look", 1)
        with pytest.raises(bh.BayesHCCError, match=match):
            bh.interim_analysis(example_trial, plan, look, fast=True, **kwargs)
    # a record of look 1 with a method recorded but no PPoS, as `monitor --method normal`
    # wrote it without --ppos
    rec = {k: v for k, v in json.loads(log_lines[0]).items()
           if k not in ("prev_sha256", "record_sha256")}
    rec["ppos_requested"] = {"ppos": False, "method": "normal"}
    log = tmp_path / "old.jsonl"
    append_record(log, rec)
    out = bh.verify_log(log, example_trial, PLAN)
    assert out["reproduced"], out["problems"]


def test_logs_that_are_not_audit_logs(tmp_path, example_trial):
    """(Found by a coverage run: no test reached these.) A missing, empty or binary file is
    named for what it is by verify_log; a look is not appended, and not fitted, after a
    last line that is not a chained record or to a binary file."""
    with pytest.raises(bh.BayesHCCError, match=r"audit.jsonl: no such audit log"):
        bh.verify_log(tmp_path / "audit.jsonl", example_trial, PLAN)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(bh.BayesHCCError, match=r"empty.jsonl: the audit log has no records"):
        bh.verify_log(empty, example_trial, PLAN)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(128, 256)))
    for call in (lambda: bh.verify_log(binary, example_trial, PLAN),
                 lambda: bh.interim_analysis(example_trial, PLAN, look=1, fast=True,
                                             log=binary)):
        with pytest.raises(bh.BayesHCCError, match=r"binary.jsonl is not an audit log \(not "
                                                   r"UTF-8 text\)"):
            call()
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"look": 1}\nlook 2 done\n')
    with pytest.raises(bh.BayesHCCError, match=r"notes.jsonl: the last record \(line 2\) is "
                                               r"not a chained audit record; verify_log shows"):
        bh.interim_analysis(example_trial, PLAN, look=1, fast=True, log=notes)
    assert notes.read_text() == '{"look": 1}\nlook 2 done\n'  # left as it was


def test_repeated_and_out_of_order_confirmatory_looks_are_noted(tmp_path, log_lines,
                                                                 example_trial):
    """The chain says whether the log is intact, not whether a look was run twice (another
    seed, another try) or after a later one: a committee wants both pointed out. The
    records here are the fixture's, re-chained as confirmatory (``fast`` false): look 1,
    look 1 again, look 2, then look 1 a third time. Exploratory (fast) runs are not
    noted: the fixture's own log, fast, has none."""
    assert bh.verify_log(_write(tmp_path, log_lines), example_trial, PLAN,
                         rerun=False)["notes"] == []
    path = tmp_path / "confirmatory.jsonl"
    recs = [json.loads(x) for x in log_lines] + [json.loads(log_lines[0])]
    for rec in recs:
        append_record(path, {**rec, "fast": False})
    out = bh.verify_log(path, example_trial, PLAN, rerun=False)
    assert out["problems"] == []   # intact: the notes are not integrity problems
    assert out["notes"] == [
        "look 'interim 1' has 3 confirmatory records (lines 1, 2, 4): say which one "
        "decided, and why it was re-run",
        "line 4: look 'interim 1' was run after the later look 'interim 2' (line 3)"]


def test_a_look_under_another_plan_is_not_appended_to_the_log(tmp_path, log_lines,
                                                              example_trial, monkeypatch):
    """verify_log checks every record against one plan, so a look appended under an
    amended plan could never verify beside the earlier ones: it used to be appended
    without a word. It is refused before the look's fit, and the log is left as it was;
    the same plan (loaded again from its file) still appends."""
    path = _write(tmp_path, log_lines)
    for name in ("monitoring.toml", "primary_os.toml"):
        text = (PLAN.parent / name).read_text()
        (tmp_path / name).write_text(text.replace("efficacy = 0.999", "efficacy = 0.99"))
    other = bh.load_plan(tmp_path / "monitoring.toml")
    before = path.read_text()

    def no_fit(*a, **k):
        raise AssertionError("the look was fitted before the log was checked")

    monkeypatch.setattr("bayes_hcc.monitoring.interim.fit_spec", no_fit)
    with pytest.raises(bh.BayesHCCError, match=(
            rf"made with plan 'os_monitoring' \(hash {bh.load_plan(PLAN).hash[:12]}, "
            rf"line 3\), this look with another plan \(hash {other.hash[:12]}\).*new log")):
        bh.interim_analysis(example_trial, other, look=2, fast=True, log=path)
    (tmp_path / "b").mkdir()
    broken = _write(tmp_path / "b", [*log_lines, "[1, 2]"])
    with pytest.raises(bh.BayesHCCError, match=r"the last record \(line 4\) is not a "
                       "chained audit record"):  # also before the fit
        bh.interim_analysis(example_trial, PLAN, look=2, fast=True, log=broken)
    rec = {**json.loads(log_lines[-1]), "plan_hash": other.hash}
    with pytest.raises(bh.BayesHCCError, match="One audit log holds the looks of one plan"):
        append_record(path, rec)
    assert path.read_text() == before
    append_record(path, json.loads(log_lines[-1]))  # the log's own plan: appended
    assert len(path.read_text().splitlines()) == 4
