"""Every Python example in the README and the documentation names the package's API as it is.

The README's examples are also run (``tests/test_readme.py``); the guides' examples read
files a user has and fit many models, so here they are checked without running: each
```python block parses, every ``bh.<name>`` it uses exists, and every keyword it passes to a
``bh`` function or class, or to a method called on a ``bh`` class's new instance
(``bh.IllnessDeath(...).fit(trial, random_seed=1)``), is one that callable takes. A renamed
function or argument in the package then fails here instead of in a user's notebook.
"""

import ast
import inspect
import re
from pathlib import Path

import pytest

import bayes_hcc as bh

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                    *(ROOT / "docs").glob("*/*.md")])
DOCUMENTS = [d for d in DOCUMENTS if "_build" not in d.parts and BLOCK.search(d.read_text())]


def _bh_path(node):
    """``["datasets", "load_example_trial"]`` for ``bh.datasets.load_example_trial``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "bh":
        return parts[::-1]
    return None


def _resolve(parts):
    obj, seen = bh, "bh"
    for name in parts:
        if not hasattr(obj, name):
            raise LookupError(f"{seen}.{name} does not exist")
        obj, seen = getattr(obj, name), f"{seen}.{name}"
    return obj, seen


def _check_keywords(call, target, label):
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return []
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [f"{label}({k.arg}=...): {label} takes no argument {k.arg!r} "
            f"(it takes {', '.join(params)})"
            for k in call.keywords if k.arg is not None and k.arg not in params]


def problems_in(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (parts := _bh_path(node)):
            try:
                _resolve(parts)
            except LookupError as err:
                out.append(str(err))
        if not isinstance(node, ast.Call):
            continue
        if parts := _bh_path(node.func):
            try:
                target, label = _resolve(parts)
            except LookupError:
                continue  # reported above
            out += _check_keywords(node, target, label)
        elif (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call)
              and (cls_parts := _bh_path(node.func.value.func))):
            try:
                cls, label = _resolve(cls_parts)
            except LookupError:
                continue
            if inspect.isclass(cls):
                method = getattr(cls, node.func.attr, None)
                if method is None:
                    out.append(f"{label}(...).{node.func.attr} does not exist")
                else:
                    out += _check_keywords(node, method, f"{label}(...).{node.func.attr}")
    return out


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_examples_use_the_api_as_it_is(document):
    found = []
    for i, block in enumerate(BLOCK.findall(document.read_text(encoding="utf-8")), 1):
        try:
            found += [f"block {i}: {p}" for p in problems_in(block)]
        except SyntaxError as err:
            found.append(f"block {i} does not parse: {err}")
    assert not found, f"{document.relative_to(ROOT)}:\n" + "\n".join(found)


def test_the_check_finds_what_it_is_for():
    """The checker itself: a missing name, a wrong keyword and a wrong method keyword."""
    assert problems_in("bh.no_such_function(1)") == ["bh.no_such_function does not exist"]
    assert problems_in("bh.rmst(fit, horizon=18)")[0].startswith(
        "bh.rmst(horizon=...): bh.rmst takes no argument 'horizon'")
    assert problems_in('bh.WeibullPH().fit(trial, seed=1)')[0].startswith(
        "bh.WeibullPH(...).fit(seed=...)")
    assert problems_in("bh.rmst(fit, tau=18); bh.WeibullPH().fit(trial, 'os')") == []


TOML = re.compile(r"```toml\n(.*?)```", re.S)


@pytest.mark.parametrize("document", sorted(
    d for d in {ROOT / "README.md", *(ROOT / "docs").rglob("*.md")}
    if "_build" not in d.parts and TOML.search(d.read_text(encoding="utf-8"))),
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_toml_examples_load(document):
    """A TOML example that is a whole plan (it has [final]) or a whole analysis spec (it has
    a family or an endpoint) loads as the package reads it (a plan's analysis path relative
    to models/, where the shipped specs are); others (a spec's one table) parse."""
    import tomllib

    from bayes_hcc.monitoring.plan import plan_from_dict

    for block in TOML.findall(document.read_text(encoding="utf-8")):
        d = tomllib.loads(block)
        if "final" in d:
            plan_from_dict(d, ROOT / "models")
        elif "family" in d or "endpoint" in d:
            bh.load_spec(d)
