"""An illness-death fit read back from a file written by ``IllnessDeathFit.save``
(``bh.load_fit`` dispatches here through ``models.fit.FIT_LOADERS``).

The draws are kept as saved; the model comes from its saved settings and the patients from
the saved data group, and the families and priors are rebuilt from both as the fit built
them. They must equal the ones the draws came from (the ``families`` and ``priors``
attributes written at fit time), or the file is refused: draws read against other
families would give silently wrong curves.
"""

from __future__ import annotations

import json

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.models.fit import KIND_ATTR
from bayes_hcc.multistate.data import IllnessDeathData
from bayes_hcc.multistate.fit import IllnessDeathFit
from bayes_hcc.multistate.likelihood import TRANSITIONS
from bayes_hcc.multistate.model import IllnessDeath

__all__ = ["load_illness_death"]


def load_illness_death(dt, path, spec) -> IllnessDeathFit:
    group = IllnessDeathFit.DATA_GROUP
    try:
        ds = dt[group].to_dataset()
        model = IllnessDeath.from_settings(json.loads(dt.attrs["model_settings"]))
        info = json.loads(ds.attrs["covariate_info"])
        data = IllnessDeathData(
            arm=ds["arm"].values, site=ds["site"].values, prog_lower=ds["prog_lower"].values,
            prog_upper=ds["prog_upper"].values, time=ds["time"].values,
            death=ds["death"].values, patient_id=ds["patient_id"].values.astype(str),
            arms=tuple(json.loads(ds.attrs["arms"])), sites=tuple(json.loads(ds.attrs["sites"])),
            time_unit=str(ds.attrs["time_unit"]),
            X=ds["X"].values if "X" in ds else None, covariate_info=tuple(info.items()),
            covariate_labels=tuple(json.loads(ds.attrs["covariate_labels"])),
            admin_time=ds["admin_time"].values if "admin_time" in ds else None)
        families = model.families(data)
        priors = [model.priors_for(f, t) for f, t in zip(families, TRANSITIONS)]
    except (KeyError, ValueError, TypeError) as err:
        raise BayesHCCError(f"{path}: not a readable illness-death fit "
                            f"({type(err).__name__}: {err}).") from None
    rebuilt = {"families": [f.settings() for f in families],
               "priors": [{k: p.to_dict() for k, p in pr.items()} for pr in priors]}
    for name, value in rebuilt.items():
        if json.loads(json.dumps(value)) != json.loads(dt.attrs[name]):
            raise BayesHCCError(f"{path}: the saved model settings and patients do not rebuild "
                                f"the {name} the draws came from (attribute {name!r}); the "
                                "file was edited or written by another version. Refit.")
    tree = dt.copy()
    del tree[group]
    for key in (KIND_ATTR, "model_settings"):
        tree.attrs.pop(key, None)
    fit = IllnessDeathFit(tree, model, data, families, priors)
    fit.spec = spec
    return fit
