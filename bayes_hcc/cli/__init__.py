"""The ``bayes-hcc`` command line: thin commands over the package."""

from bayes_hcc.cli.app import app, main

__all__ = ["app", "main"]
