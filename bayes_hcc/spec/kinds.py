"""Which of the package's TOML files a table of keys is, to say so when a file is given to
the wrong reader (a monitoring plan to ``bh.load_spec`` listed nine "unknown keys")."""

from __future__ import annotations

#: (kind, reader, keys only that kind has at its top level)
KINDS = (
    ("an analysis spec", "bh.load_spec", {"family", "endpoint", "priors", "sampler"}),
    ("a monitoring plan", "bh.load_plan", {"looks", "final", "analysis", "prediction"}),
    ("a sensitivity grid", "bh.load_grid", {"variants", "base", "include_base"}),
    ("a history of control arms", "bh.read_history", {"arm"}),
)


def kind_hint(keys, reader: str) -> str:
    """`` (it is a monitoring plan: read it with bh.load_plan)`` when ``keys`` mark another
    kind of file than ``reader`` reads, else ``""``."""
    keys = set(keys)
    for kind, other, marks in KINDS:
        if other != reader and len(keys & marks) >= min(2, len(marks)):
            return f" (this file is {kind}: read it with {other})"
    return ""
