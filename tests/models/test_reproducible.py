"""Same data, model and seed give the same draws, whatever the state of the compile cache."""

import os
import subprocess
import sys

SCRIPT = """
import hashlib, warnings
warnings.simplefilter("ignore")
import bayes_hcc as bh
trial = bh.datasets.load_example_trial()
fit = bh.WeibullPH().fit(trial, "os", random_seed=11, draws=100, tune=100, chains=2)
print(hashlib.sha256(fit.posterior["log_hr"].values.tobytes()).hexdigest())
from bayes_hcc.models import _engine
(_, compiled), = _engine._CACHE.values()
print(compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits)
"""


def test_cold_and_warm_compile_cache_give_identical_draws(tmp_path):
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'cache'}"}
    runs = [subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                           text=True, check=True, timeout=300).stdout.split()
            for _ in range(2)]  # first: empty cache (compiled here); second: loaded from disk
    (cold, *cold_hits), (warm, *warm_hits) = runs
    assert cold == warm and len(cold) == 64
    # nutpie's C callbacks (log density and expansion) were compiled by the first process
    # and loaded from the disk cache by the second: no numba recompilation per process.
    assert cold_hits == ["0", "0"] and warm_hits == ["1", "1"]
