"""The package's import graph has no circles (docs/architecture.md): no module imports,
at module level or inside a function, a module that imports it back."""

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_hcc"


def _import_graph():
    """(module names, adjacency matrix): an edge a -> b when a imports b anywhere."""
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
             .removesuffix(".__init__"): p for p in PACKAGE.rglob("*.py")}
    names = sorted(files)
    index = {n: i for i, n in enumerate(names)}
    edges = set()
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("bayes_hcc"):
                subs = [f"{node.module}.{a.name}" for a in node.names
                        if f"{node.module}.{a.name}" in files]
                targets = subs or [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("bayes_hcc")]
            edges |= {(index[name], index[t]) for t in targets if t in files and t != name}
    rows, cols = zip(*edges)
    adj = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    return names, adj


def test_no_import_circles():
    names, adj = _import_graph()
    _, label = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(label)
    circles = [[n for n, lab in zip(names, label) if lab == k]
               for k in np.flatnonzero(sizes > 1)]
    assert not circles, circles


@pytest.mark.parametrize("low, high", [("bayes_hcc.models.fit", "bayes_hcc.models.base"),
                                       ("bayes_hcc.families.registry", "bayes_hcc.models.base"),
                                       ("bayes_hcc.data.trial", "bayes_hcc.models.likelihood")])
def test_dependencies_flow_one_way(low, high):
    names, adj = _import_graph()
    reached = breadth_first_order(adj, names.index(low), directed=True,
                                  return_predecessors=False)
    assert names.index(high) not in set(reached)
