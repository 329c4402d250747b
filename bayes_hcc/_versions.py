"""Installed versions of packages: provenance of saved results and disk-cache keys."""

from __future__ import annotations

import functools
from importlib import metadata


@functools.lru_cache(maxsize=None)
def package_versions(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(name, version) for each package, "unknown" when it is not installed."""
    out = []
    for pkg in packages:
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "unknown"))
    return tuple(out)


#: Packages whose versions every saved result (fit, audit record, report) records.
PROVENANCE_PACKAGES = ("bayes-hcc", "pymc", "pytensor", "nutpie", "arviz-base", "arviz-stats",
                       "numpy", "scipy", "numba", "llvmlite", "xarray", "pandas")


def provenance_versions() -> dict:
    """{package: version} for :data:`PROVENANCE_PACKAGES`."""
    return dict(package_versions(PROVENANCE_PACKAGES))
