"""Design simulations: fast mode (Laplace screening) against exact mode on the same seeds.

``python benchmarks/screening.py --n-trials 500`` runs the plan ``models/monitoring.toml``
under the null (HR 1.00) and the alternative (HR 0.70) in both modes, with the same trial
seeds, and writes ``benchmarks/results/screening_<time>.{json,md}`` and the per-trial
records as CSV beside them (``--fast-trials N`` runs fast mode on N trials per scenario,
compared with exact mode on the first ``--n-trials``):

* look decisions that differ between the modes (every look a trial reached, in either
  mode: a trial that stops earlier in one mode differs at the looks the other reached);
* operating characteristics of both modes, each with its Monte Carlo 95% interval, and
  whether each mode's estimate lies inside the other's interval;
* design trials per minute in each mode (wall time of the whole run on this machine,
  pilot included) and their ratio; the screening report (margin, share sent to MCMC).

With ``--ppos-sims N`` (> 0) it also computes the predictive probability of success of
the example trial at three interim cuts (40, 60 and 80 OS events) from N completed trials,
``method="mcmc"`` and ``method="fast"`` on the same completions, and reports both with
their MCSE, the difference in MCSE units, completions per minute and the screening share;
at the later cuts fast mode runs twice, with its own pilot and with the first cut's margin
calibration (``calibration=``), as repeated looks at one trial would.

Runs are resumable: each mode appends its trials to a store under ``--work``; a rerun with
the same settings reuses them (timings then cover only the new trials, so they are
reported only for runs that computed every trial).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PLAN = HERE.parent / "models" / "monitoring.toml"
SCENARIOS = {"HR 1.00": {"hr_os": 1.0}, "HR 0.70": {"hr_os": 0.70}}


def look_decisions(rec: pd.Series, looks: list[str]) -> dict:
    """look name -> decision for every look the trial reached (continue before its stop)."""
    out = {}
    for name in looks:
        if name in (rec["looks_skipped"] or []):
            continue
        if name == rec["look"]:
            out[name] = rec["decision"]
            break
        out[name] = "continue"
    return out


def compare(exact, fast) -> dict:
    """Exact against fast mode on the trials both ran (fast mode may have run more)."""
    looks = exact.settings["looks"]
    key = ["scenario", "trial"]
    fast = dataclasses.replace(fast, records=fast.records[
        fast.records["trial"] < exact.records["trial"].max() + 1])
    e = exact.records.set_index(key).sort_index()
    f = fast.records.set_index(key).sort_index()
    n_looks = n_diff = 0
    for idx in e.index:
        de, df = look_decisions(e.loc[idx], looks), look_decisions(f.loc[idx], looks)
        for name in set(de) | set(df):
            n_looks += 1
            n_diff += de.get(name) != df.get(name)
    trial_same = (e["decision"] == f["decision"]) & (e["look"] == f["look"])
    te, tf = exact.table(), fast.table()
    oc = te.join(tf, lsuffix="_exact", rsuffix="_fast")
    oc["fast_in_exact_interval"] = oc["estimate_fast"].between(oc["mc_lower_exact"],
                                                               oc["mc_upper_exact"])
    oc["exact_in_fast_interval"] = oc["estimate_exact"].between(oc["mc_lower_fast"],
                                                                oc["mc_upper_fast"])
    return {"look_decisions": n_looks, "look_decisions_differing": n_diff,
            "share_differing": n_diff / n_looks, "trials": len(e),
            "trials_differing": int((~trial_same).sum()),
            "differing_trials": e.loc[~trial_same, ["decision", "look"]].join(
                f.loc[~trial_same, ["decision", "look", "decided_by"]], lsuffix="_exact",
                rsuffix="_fast").reset_index().to_dict("records"),
            "oc": oc}


PPOS_CUTS = (40, 60, 80)


def warm_up(spec, trial) -> None:
    """Compile (or load from the on-disk caches) both methods' functions for this model
    structure before anything is timed: the sampler's graph (one short fit) and the Laplace
    approximation's. On a machine whose caches are cold (a fresh clone) the first
    approximation compiles C code for about 50 s; that is a once-per-machine cost, and
    timing it inside fast mode's first run made that run 3x slower than it is (``make
    bench`` in a fresh worktree: the first cut's fast PPoS took 83 s, 26 s after warming)."""
    import warnings

    from bayes_hcc.models.from_spec import fit_spec
    from bayes_hcc.monitoring.screening import approximate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_spec(spec, trial, check=False, draws=20, tune=20, chains=1,
                 log_likelihood=False, random_seed=0)
        approximate(spec, trial)


def ppos_comparison(n_sims: int, workers: int, pilot: int) -> list[dict]:
    """PPoS of the example trial at each of PPOS_CUTS events, exact and fast, on the same
    completions (same seed); from the second cut on, fast also with the first cut's
    margin calibration (``calibration=``: no pilot), as repeated looks would run it."""
    import bayes_hcc as bh
    from bayes_hcc.monitoring.plan import plan_from_dict

    trial = bh.datasets.load_example_trial()
    looks = [{"events": k, "efficacy": 0.999} for k in PPOS_CUTS]
    plan = plan_from_dict({"analysis": "primary_os.toml", "looks": looks,
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": n_sims}},
                          base_dir=PLAN.parent)
    warm_up(plan.spec, trial)
    rows, first = [], None
    for i, k in enumerate(PPOS_CUTS, start=1):
        look = bh.interim_analysis(trial, plan, look=i, fast=True, random_seed=k)
        row = {"events": k}
        methods = [("mcmc", {}), ("fast", {"pilot": pilot})]
        if first is not None:
            methods.append(("reused", {"calibration": first}))
        for name, extra in methods:
            t0 = time.perf_counter()
            res = look.ppos(method="mcmc" if name == "mcmc" else "fast", random_seed=k,
                            workers=workers, progress=True, **extra)
            row[f"{name}_seconds"] = time.perf_counter() - t0
            row[f"ppos_{name}"], row[f"mcse_{name}"] = res.ppos, res.mcse
            if name == "mcmc":
                exact = res.sims
                continue
            row[f"screening_{name}"] = res.settings["screening"]
            row[f"decisions_differing_{name}"] = int((res.sims["success"] != exact["success"]
                                                      ).sum())
            row[f"difference_in_mcse_{name}"] = (res.ppos - row["ppos_mcmc"]) / max(
                row["mcse_mcmc"], 1 / n_sims)
            if name == "fast" and first is None and res.calibration is not None:
                first = res
        rows.append(row)
    return rows


def ppos_lines(rows, n: int) -> list[str]:
    """The PPoS table: each fast variant against exact mode, per cut."""
    out = ["| OS events at the cut | fast variant | PPoS exact (MCSE) | PPoS fast (MCSE) | "
           "difference / MCSE | success decisions differing | completions sent to MCMC "
           "(after the pilot) | completions per minute exact / fast (ratio) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pe = n / r["mcmc_seconds"] * 60
        for name, label in (("fast", "own pilot"),
                            ("reused", f"calibration of the {PPOS_CUTS[0]}-event cut")):
            if f"{name}_seconds" not in r:
                continue
            pf = n / r[f"{name}_seconds"] * 60
            out.append(f"| {r['events']} | {label} | {r['ppos_mcmc']:.3f} "
                       f"({r['mcse_mcmc']:.3f}) | {r[f'ppos_{name}']:.3f} "
                       f"({r[f'mcse_{name}']:.3f}) | {r[f'difference_in_mcse_{name}']:+.2f} | "
                       f"{r[f'decisions_differing_{name}']} | "
                       f"{r[f'screening_{name}']['share_sent_to_mcmc']:.3f} | {pe:.0f} / "
                       f"{pf:.0f} ({pf / pe:.2f}) |")
    out += ["", "Where a fast PPoS's time goes (wall seconds on 2 workers: simulating the "
            "completions in this process, the pilot's refits both ways, the screened "
            "completions; the rest is setting up and starting the workers):", ""]
    for r in rows:
        for name in ("fast", "reused"):
            if f"{name}_seconds" in r:
                sec = r[f"screening_{name}"].get("seconds", {})
                split = ", ".join(f"{k} {v:.1f}" for k, v in sec.items())
                out.append(f"- {r['events']} events, {name}: total {r[f'{name}_seconds']:.1f}"
                           f" ({split}); exact method {r['mcmc_seconds']:.1f}")
    return out


def main(argv=None):
    import bayes_hcc as bh

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-trials", type=int, default=500)
    p.add_argument("--fast-trials", type=int, default=None,
                   help="trials per scenario in fast mode (default --n-trials; more: the "
                   "first --n-trials are compared with exact mode, and the speed is fast "
                   "mode's at its own size, where the pilot weighs less)")
    p.add_argument("--pilot", type=int, default=50)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--work", type=Path, default=HERE / "results" / "screening_work")
    p.add_argument("--ppos-sims", type=int, default=0,
                   help="completions per PPoS at three cuts of the example trial (0: skip)")
    p.add_argument("--skip-design", action="store_true")
    args = p.parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    out = HERE / "results" / f"screening_{stamp}"
    lines = []
    if args.ppos_sims > 0:
        rows = ppos_comparison(args.ppos_sims, args.workers, args.pilot)
        lines += [f"# PPoS: fast vs exact ({args.ppos_sims} completions per cut, {stamp})",
                  "", *ppos_lines(rows, args.ppos_sims)]
        lines.append("")
        out.with_name(out.name + "_ppos.json").write_text(json.dumps(rows, indent=2,
                                                                     default=float))
    if args.skip_design:
        out.with_suffix(".md").write_text("\n".join(lines))
        print("\n".join(lines))
        return rows
    args.work.mkdir(parents=True, exist_ok=True)
    common = dict(n_trials=args.n_trials, random_seed=args.seed, workers=args.workers)
    n_fast = args.fast_trials or args.n_trials
    if n_fast < args.n_trials:
        p.error(f"--fast-trials {n_fast} < --n-trials {args.n_trials}: fast mode must run "
                "every trial exact mode runs (give at least --n-trials)")
    size = {"exact": args.n_trials, "fast": n_fast}
    from bayes_hcc.monitoring.operating import DESIGN_BASE, _scenario_kwargs
    from bayes_hcc.simulate.trial import simulate_trial

    warm_up(bh.load_plan(PLAN).spec, simulate_trial(
        **_scenario_kwargs(DESIGN_BASE, next(iter(SCENARIOS.values()))), random_seed=0))
    runs, seconds = {}, {}
    for mode in ("exact", "fast"):
        common["n_trials"] = size[mode]
        store = args.work / f"{mode}_n{size[mode]}_seed{args.seed}.jsonl"
        timing = store.with_suffix(".seconds.json")  # written by the run that made the store
        fresh = not store.exists()
        t0 = time.perf_counter()
        extra = {"pilot": args.pilot} if mode == "fast" else {}
        runs[mode] = bh.simulate_design(PLAN, SCENARIOS, mode=mode, store=store, **common,
                                        **extra)
        if fresh:
            seconds[mode] = time.perf_counter() - t0
            timing.write_text(json.dumps({"seconds": seconds[mode], "written": stamp}))
        else:
            seconds[mode] = (json.loads(timing.read_text())["seconds"] if timing.exists()
                             else float("nan"))
    res = compare(runs["exact"], runs["fast"])
    # what costs what: MCMC fits in each mode (exact: every look a trial reached; fast: the
    # pilot trials' looks and the screened looks sent to MCMC), and the screened trials'
    # worker seconds in MCMC and in the approximation (measured in the workers)
    looks = runs["exact"].settings["looks"]
    fits_exact = sum(len(look_decisions(r, looks)) for _, r in runs["exact"].records.iterrows())
    fr = runs["fast"].records
    pilot_rows = fr["trial"] < args.pilot
    scr = runs["fast"].settings["screening"]
    res["cost"] = {"mcmc_fits_exact": fits_exact,
                   "mcmc_fits_fast": int(fr.loc[pilot_rows, "n_looks"].sum()
                                         + fr.loc[~pilot_rows, "n_mcmc"].sum()),
                   "laplace_looks_fast": int(fr["n_looks"].sum()),
                   "screened_seconds_mcmc": scr.get("seconds_mcmc", float("nan")),
                   "screened_seconds_approx": scr.get("seconds_approx", float("nan")),
                   "screened_seconds_other": scr.get("seconds_other", float("nan")),
                   "screened_trials": int((~pilot_rows).sum())}
    per_min = {m: size[m] * len(SCENARIOS) / s * 60 for m, s in seconds.items()}
    # fast mode at its own size: every operating characteristic with its MC interval
    fast_oc = runs["fast"].table()
    oc = res.pop("oc")
    summary = {"n_trials_per_scenario": args.n_trials, "fast_trials_per_scenario": n_fast,
               "scenarios": SCENARIOS,
               "pilot": args.pilot, "workers": args.workers, "seed": args.seed,
               "seconds": seconds, "trials_per_minute": per_min,
               "speed_ratio_fast_over_exact": per_min["fast"] / per_min["exact"],
               "screening": scr, **res, "versions": {"bayes_hcc": bh.__version__}}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=float))
    recs = runs["exact"].records.merge(runs["fast"].records, on=["scenario", "trial"],
                                       suffixes=("_exact", "_fast"))
    recs.to_csv(f"{out}_trials.csv", index=False)
    fmt = lambda r, m: (f"{r[f'estimate_{m}']:.3g} ({r[f'mc_lower_{m}']:.3g}-"  # noqa: E731
                        f"{r[f'mc_upper_{m}']:.3g})")
    table = pd.DataFrame({"exact": oc.apply(fmt, axis=1, m="exact"),
                          "fast": oc.apply(fmt, axis=1, m="fast"),
                          "each inside the other's interval":
                          oc["fast_in_exact_interval"] & oc["exact_in_fast_interval"]})
    lines += [f"# Fast vs exact design simulation ({args.n_trials} trials per scenario, "
             f"{stamp})", "",
             f"- look decisions differing: {res['look_decisions_differing']} of "
             f"{res['look_decisions']} ({100 * res['share_differing']:.2f}%); trials whose "
             f"decision or deciding look differs: {res['trials_differing']} of {res['trials']}",
             f"- design trials per minute: exact {per_min['exact']:.1f}, fast "
             f"{per_min['fast']:.1f} (ratio {summary['speed_ratio_fast_over_exact']:.2f}; "
             f"{args.workers} workers, pilot included; exact mode ran {args.n_trials} and "
             f"fast mode {n_fast} trials per scenario)",
             f"- screening: margins on the probit scale by threshold "
             f"{ {c: round(m, 3) for c, m in scr['margins_by_threshold'].items()} } "
             f"(error SD by threshold "
             f"{ {c: round(v, 3) for c, v in scr['sd_by_threshold'].items()} }) for an expected "
             f"flip share of {scr['expected_flip_share']:.4f} (target "
             f"{scr['target_flip_share']:g}; per-comparison bound "
             f"{scr['margin_per_comparison']:.3f}; bias "
             f"{scr['bias']:.3f}, SD {scr['sd']:.3f}, {scr['n_pilot']} pilot comparisons, "
             f"normality p {scr['normality_p']:.3g}); share of screened looks sent to MCMC "
             f"{scr['share_sent_to_mcmc']:.3f}; approximations that failed "
             f"{scr['approximation_failed']}",
             f"- cost: MCMC fits {res['cost']['mcmc_fits_exact']} (exact, "
             f"{len(runs['exact'].records)} trials) vs {res['cost']['mcmc_fits_fast']} (fast, "
             f"{len(fr)} trials, pilot included); the {res['cost']['screened_trials']} screened "
             f"trials spent {res['cost']['screened_seconds_mcmc']:.0f} worker-seconds in MCMC, "
             f"{res['cost']['screened_seconds_approx']:.0f} in the approximation "
             f"({res['cost']['laplace_looks_fast']} looks approximated, pilot included) and "
             f"{res['cost']['screened_seconds_other']:.0f} simulating the trials and cutting "
             "their data", "",
             table.to_markdown(), "",
             f"Fast mode at its own size ({n_fast} trials per scenario):", "",
             fast_oc.astype({"n_trials": int}).to_markdown(floatfmt=".3g"), "",
             "The convergence-failure row is not expected to agree: fast mode runs MCMC at "
             "fewer looks, so fewer looks can fail the checks.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {out}.json, .md, _trials.csv")
    return summary


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
