"""Sphinx configuration: MyST Markdown pages, rendered notebooks (myst-nb), API reference
from docstrings (autodoc + napoleon), PyData theme. Built with warnings as errors."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bayes_hcc  # noqa: E402

project = "bayes-hcc"
author = "bayes-hcc developers"
release = version = bayes_hcc.__version__
copyright = "2026, bayes-hcc developers"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
# Notebooks are executed by `make notebooks` (papermill, FAST mode) into docs/notebooks/;
# the site renders those executed copies without running them again.
nb_execution_mode = "off"
nb_merge_streams = True
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

html_theme = "pydata_sphinx_theme"
html_title = f"bayes-hcc {release}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2,
                      "secondary_sidebar_items": ["page-toc"]}
html_static_path = []
suppress_warnings = ["myst.header"]
