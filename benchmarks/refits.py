"""Cheaper MCMC refits (issue #27, item 3), measured before they are built.

``python benchmarks/refits.py --n-trials 30`` answers two questions with numbers and writes
``benchmarks/results/refits_<time>.{json,md}``:

1. **Warm starts.** For simulated trials of the null scenario of ``models/monitoring.toml``,
   the plan's model is fitted at the first look's cut (the parent: its unconstrained draws
   and final step size are kept) and then at the second look's cut (the child: more
   patients, more events, the same graph). The child is refitted cold (nutpie's start:
   jittered support points, its default step size) with the plan's tuning (1000) and with
   shorter tuning (300, 100), and warm (every chain starts at a random draw of the parent,
   with the parent's step size; nutpie 0.16 accepts no initial mass matrix) with 300 and
   100 tuning steps; 1000 draws per chain, 4 chains, four seeds each. Reported per variant:
   sampling seconds, the smallest bulk ESS over the sampled variables, the largest R-hat,
   divergences, and the error of P(HR < 1) against a 4 x 5000-draw reference run, in
   units of that error's expected size (sqrt(MCSE^2 + MCSE_ref^2)).
2. **Draws sized to the decision.** A short run (4 x 250 draws) decides a look only when
   every comparison of P(HR < h) with its threshold c is farther than
   k * max(MCSE, sqrt(c (1 - c) / draws)) from it, with k = Phi^-1(1 - 0.0005) *
   sqrt(1 + 250 / 1000) (a flip against the full run below 0.05% per comparison); the other
   looks need the full run. Measured on (a) every look of the simulated trials (live: a
   short run at each look), and (b) the looks the screening bench's fast mode sent to MCMC
   (``--records``: that run's recorded probability and MCSE at 4 x 1000 draws; a 4 x 250
   run's MCSE is taken as twice it), the only looks fast mode runs MCMC at.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as dt
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
RULES = {"interim 1": (0.999, 0.10), "interim 2": (0.995, 0.20), "final": (0.975,)}
K = float(stats.norm.ppf(1 - 0.0005) * np.sqrt(1 + 250 / 1000))


def short_run_decides(p: float, mcse: float, thresholds, draws: int) -> bool:
    """Whether a short run's P(HR < h) (MCSE ``mcse``, ``draws`` draws) is farther than K
    of its Monte Carlo errors from every threshold."""
    return all(abs(p - c) > K * max(mcse, np.sqrt(c * (1 - c) / draws)) for c in thresholds)


def _setup(model, spec, trial):
    from bayes_hcc.models import _nutpie
    from bayes_hcc.models.from_spec import population
    from bayes_hcc.models.graph import prepare
    from bayes_hcc.models.sampling import _compiled, graph_builder

    ep, family, priors, X, scale, data, key = prepare(model, population(spec, trial),
                                                      spec.endpoint)
    m, compiled = _compiled(key, graph_builder(model, ep, family, priors, data, X, key),
                            "nutpie")
    return _nutpie.with_data(compiled, m, data), key


def _run(compiled, *, draws, tune, seed, warm=None):
    """One nutpie run: (seconds, P(HR < 1), its MCSE, min bulk ESS, max R-hat, divergences,
    unconstrained draws, median final step size)."""
    from arviz_stats import ess, mcse, rhat

    from bayes_hcc.models import _nutpie

    nutpie = _nutpie.import_nutpie()
    kw = {}
    if warm is not None:
        draws_u, step = warm

        def start(s):  # a random draw of the parent per chain
            return draws_u[np.random.default_rng(s).integers(len(draws_u))].copy()

        compiled = dataclasses.replace(compiled, initial_point_func=start)
        kw["initial_step"] = step
    t0 = time.perf_counter()
    raw = nutpie.sample(compiled, draws=draws, tune=tune, chains=4, cores=2, seed=seed,
                        save_warmup=False, progress_bar=False, target_accept=0.95,
                        store_unconstrained=True, return_raw_trace=True, **kw)
    seconds = time.perf_counter() - t0
    draw_batches, stats_batches = raw.get_arrow_trace()  # can be taken once
    groups = _nutpie.trace_groups(
        type("Raw", (), {"get_arrow_trace": lambda self: (draw_batches, stats_batches)})(),
        compiled)
    post, sst = groups["posterior"], groups["sample_stats"]
    keep = [~np.asarray(_nutpie._column(s, "tuning")[0], bool) for s in stats_batches]
    u = np.concatenate([_nutpie._column(s, "unconstrained_draw")[0][k]
                        for s, k in zip(stats_batches, keep)])
    step = float(np.median(np.concatenate([_nutpie._column(s, "step_size_bar")[0][k]
                                           for s, k in zip(stats_batches, keep)])))
    below = (post["log_hr"].values < 0).astype(float)
    sampled = [v for v in ("log_hr", "site_sd", "site_z", "rw_z") if v in post]

    def arr(v):
        a = post[v].values
        return a if a.ndim > 2 else a[..., None]

    return {"seconds": seconds, "p": float(below.mean()),
            "mcse": float(mcse(below, chain_axis=0, draw_axis=1)),
            "ess_min": min(float(np.min(ess(arr(v), chain_axis=0, draw_axis=1)))
                           for v in sampled),
            "rhat_max": max(float(np.max(rhat(arr(v), chain_axis=0, draw_axis=1)))
                            for v in sampled),
            "divergences": int(sst["diverging"].values.sum()), "u": u, "step": step}


def warm_start_study(n_trials: int, seeds: int) -> pd.DataFrame:
    from bayes_hcc.models.from_spec import build
    from bayes_hcc.monitoring.interim import look_date
    from bayes_hcc.monitoring.operating import DESIGN_BASE, _scenario_kwargs, _trial_seed
    from bayes_hcc.monitoring.plan import load_plan
    from bayes_hcc.simulate.trial import simulate_trial

    plan = load_plan(HERE.parent / "models" / "monitoring.toml")
    model = build(plan.spec)
    kwargs = _scenario_kwargs(dict(DESIGN_BASE), {"hr_os": 1.0})
    looks = (*plan.looks, plan.final)
    rows = []
    for i in range(n_trials):
        seed = _trial_seed(7, "refits", i)
        trial = simulate_trial(**kwargs, random_seed=seed)
        cuts = [trial.cut(look_date(trial, look, "os"), warn=False) for look in looks]
        parent_c, key1 = _setup(model, plan.spec, cuts[0])
        child_c, key2 = _setup(model, plan.spec, cuts[1])
        if key1 != key2:  # e.g. a site without patients at the first look: no warm start
            rows.append({"trial": i, "variant": "graphs differ"})
            continue
        parent = _run(parent_c, draws=1000, tune=1000, seed=seed)
        ref = _run(child_c, draws=5000, tune=1000, seed=seed + 1)
        variants = [("cold", 1000), ("cold", 300), ("cold", 100), ("warm", 300),
                    ("warm", 100)]
        for how, tune in variants:
            for s in range(seeds):
                r = _run(child_c, draws=1000, tune=tune, seed=seed + 10 + s,
                         warm=(parent["u"], parent["step"]) if how == "warm" else None)
                rows.append({"trial": i, "variant": f"{how}, tune {tune}", "seed": s,
                             **{k: r[k] for k in ("seconds", "p", "mcse", "ess_min",
                                                  "rhat_max", "divergences")},
                             "error_in_mc_units": (r["p"] - ref["p"]) / np.hypot(
                                 r["mcse"], ref["mcse"])})
        for look, cut in zip(looks, cuts):  # the short run at every look
            c, _ = _setup(model, plan.spec, cut)
            r = _run(c, draws=250, tune=300, seed=seed + 99)
            rows.append({"trial": i, "variant": "short run", "look": look.name,
                         "p": r["p"], "mcse": r["mcse"], "seconds": r["seconds"],
                         "decides": short_run_decides(r["p"], r["mcse"],
                                                      RULES[look.name], 1000)})
    return pd.DataFrame(rows)


def recorded_mcmc_looks(path: Path) -> dict:
    """Part (b): the fast-mode looks after the pilot that went to MCMC, and how many a
    short run would decide."""
    d = pd.read_csv(path)
    d = d[d["n_looks"] != d["n_mcmc"]]  # pilot trials ran MCMC at every look
    n = decided = 0
    for _, r in d.iterrows():
        p, m = ast.literal_eval(r["p_by_look_fast"]), ast.literal_eval(r["mcse_by_look_fast"])
        for look, mc in m.items():
            n += 1
            decided += short_run_decides(p[look], 2 * mc, RULES[look], 1000)
    return {"records": path.name, "mcmc_looks": n, "short_run_decides": decided}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--records", type=Path, default=None,
                    help="a screening bench's *_trials.csv (default: the newest)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    records = args.records or sorted((HERE / "results").glob("screening_*_trials.csv"))[-1]
    t0 = time.perf_counter()
    rows = warm_start_study(args.n_trials, args.seeds)
    recorded = recorded_mcmc_looks(records)
    runs = rows[~rows["variant"].isin(["short run", "graphs differ"])]
    n_differ = int((rows["variant"] == "graphs differ").sum())
    table = runs.groupby("variant", sort=False).agg(
        seconds_median=("seconds", "median"), ess_min_median=("ess_min", "median"),
        ess_min_worst=("ess_min", "min"), rhat_worst=("rhat_max", "max"),
        divergences=("divergences", "sum"),
        error_sd_in_mc_units=("error_in_mc_units", "std"),
        error_worst_in_mc_units=("error_in_mc_units", lambda e: float(np.abs(e).max())))
    short = rows[rows["variant"] == "short run"]
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    out = HERE / "results" / f"refits_{stamp}"
    lines = [f"# Cheaper MCMC refits, measured ({args.n_trials} simulated trials, {stamp})",
             "", "## Warm starts: the second look's cut refitted after the first look's fit",
             "", f"{n_differ} trial(s) left out: their looks' graphs differ (a site without "
             "patients at the first look), so no warm start is possible.", "", table.round(3).to_markdown(), "",
             "seconds: nutpie sampling only (4 chains on 2 cores, 1000 draws per chain). "
             "An error SD near 1 in MC units: P(HR < 1) agrees with the reference run as "
             "well as its Monte Carlo errors allow.", "",
             "## Draws sized to the decision (a 4 x 250-draw run, k = "
             f"{K:.2f} Monte Carlo errors)", "",
             f"- every look of the simulated trials: the short run decides "
             f"{int(short['decides'].sum())} of {len(short)} "
             f"({short['decides'].mean():.0%}; median sampling {short['seconds'].median():.3f} s)",
             f"- the looks fast mode sent to MCMC in {recorded['records']}: the short run "
             f"would decide {recorded['short_run_decides']} of {recorded['mcmc_looks']}",
             "", f"Total wall time {time.perf_counter() - t0:.0f} s."]
    (out.with_suffix(".md")).write_text("\n".join(lines) + "\n")
    (out.with_suffix(".json")).write_text(json.dumps(
        {"n_trials": args.n_trials, "seeds": args.seeds, "k": K, "recorded": recorded,
         "left_out_graphs_differ": n_differ, "table": json.loads(table.to_json(orient="index")),
         "short_run": {"looks": len(short), "decided": int(short["decides"].sum())}},
        indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
