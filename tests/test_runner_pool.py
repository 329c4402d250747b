"""A script without a ``__main__`` guard that starts a process pool gets an error saying
why and what to do (it died with a bare BrokenProcessPool)."""

import subprocess
import sys

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
