"""Declarative analysis specifications: priors and ModelSpec (models/*.toml)."""

from bayes_hcc.spec.model_spec import (ModelSpec, apply_overrides, dump_spec, load_spec,
                                       spec_families, spec_from_dict)
from bayes_hcc.spec.priors import Prior

__all__ = ["Prior", "ModelSpec", "load_spec", "dump_spec", "spec_from_dict", "apply_overrides",
           "spec_families"]
