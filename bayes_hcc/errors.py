"""Exception and warning classes of bayes_hcc.

Every error raised for bad input subclasses :class:`ValueError` (through
:class:`BayesHCCError`), so ``except ValueError`` keeps working for callers that do
not know this package. Messages name the column, the rows or keys, and the fix.
"""

from __future__ import annotations

import contextlib

__all__ = [
    "BayesHCCError",
    "TrialDataError",
    "ADaMError",
    "SpecError",
    "ModelError",
    "HorizonError",
    "DataWarning",
    "ConvergenceWarning",
    "CacheWarning",
]


class BayesHCCError(ValueError):
    """Base class of every input error raised by bayes_hcc."""


class TrialDataError(BayesHCCError):
    """Trial data that cannot be analysed as given (missing columns, impossible dates...)."""


class ADaMError(TrialDataError):
    """An ADaM ADTTE data set that does not follow the conventions bayes_hcc reads."""


class SpecError(BayesHCCError):
    """A model or analysis specification with unknown keys or impossible values."""


class ModelError(BayesHCCError):
    """A model that cannot be built for these data (for example one site with site effects)."""


class HorizonError(BayesHCCError):
    """A time horizon beyond the follow-up of the data, without ``extrapolate=True``."""


class DataWarning(UserWarning):
    """Data that can be analysed but deserve attention (tiny sites, an arm with no events)."""


class ConvergenceWarning(RuntimeWarning):
    """MCMC diagnostics that failed: the posterior may be unreliable."""


class CacheWarning(UserWarning):
    """The compile cache cannot be used safely (for example a directory other users can
    write to): the model is compiled without it."""


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the first caller outside this package (the user's
    line in a notebook or script), however deep inside the package it arose, with that
    module's once-per-line registry. contextlib's frames are passed over too: a warning
    issued as a context manager exits (``noted_data_warnings``) came from the user's
    ``with``, where ``warnings.warn(skip_file_prefixes=...)`` named contextlib's line."""
    import os
    import sys
    import warnings

    package = os.path.dirname(__file__) + os.sep
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(package)
                                 or frame.f_code.co_filename == contextlib.__file__):
        frame = frame.f_back
    if frame is None:  # the package alone on the stack (no user frame)
        warnings.warn(message, category, stacklevel=2)
        return
    globs = frame.f_globals
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=globs.get("__name__"),
                           registry=globs.setdefault("__warningregistry__", {}))


def data_notes(caught) -> list[str]:
    """The texts of the DataWarnings among ``caught`` (``warnings.catch_warnings(record=
    True)``), once each and without their final period: what a table of many fits (the
    sensitivity grid, the subgroups) says in a row's note instead of printing it."""
    out = []
    for w in caught:
        text = str(w.message).rstrip(".")
        if issubclass(w.category, DataWarning) and text not in out:
            out.append(text)
    return out


@contextlib.contextmanager
def noted_data_warnings():
    """A step of a fit whose DataWarnings the fit keeps (``data_notes``) and still shows:
    yields a list that holds their texts (``data_notes``) when the block ends. They are
    shown from the user's line (``warn``); other warnings are passed on as they came."""
    import warnings

    notes: list[str] = []
    shown: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            try:
                yield notes
            finally:
                shown = list(caught)
    finally:  # shown when the step failed too, as they were before it raised
        for w in shown:
            if issubclass(w.category, DataWarning):
                warn(str(w.message), w.category)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno,
                                       source=w.source)
        notes.extend(data_notes(shown))


@contextlib.contextmanager
def recorded_data_warnings():
    """Record, and not show, the warnings of a block: yields a list that holds the texts
    of its DataWarnings (``data_notes``) when the block ends. For a simulated trial's
    record (a coverage study, a design simulation) and for the data's own warnings a fit
    keeps (shown when the data were read or cut)."""
    import warnings

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield notes
        finally:
            notes.extend(data_notes(caught))


@contextlib.contextmanager
def only_data_warnings():
    """Silence a fit's warnings except the DataWarnings (a fixed effect of a site without
    events yet, a cut point past the follow-up): for a fit whose convergence a verdict
    reports (an interim look), the data's warnings still show."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", DataWarning)
        yield


def as_numbers(value, caller: str, name: str, example: str = "[12, 24]") -> tuple:
    """One number or a sequence of numbers as a tuple of finite floats, else a
    :class:`BayesHCCError` naming the function (``caller``), the argument (``name``) and
    the form wanted (``example``). Text is refused: iterated, ``"12"`` gave the numbers 1
    and 2, and ``"0.8"`` an error from deep inside about ``'.'``."""
    import numpy as np

    if isinstance(value, (str, bytes)):
        raise BayesHCCError(f"{caller}: {name}={value!r} is text; give numbers, e.g. "
                            f"{name}={example}.")
    try:
        out = tuple(float(x) for x in np.atleast_1d(np.asarray(value, dtype=object)))
    except (TypeError, ValueError):
        raise BayesHCCError(f"{caller}: {name}={value!r} must be numbers, e.g. "
                            f"{name}={example}.") from None
    if not all(np.isfinite(x) for x in out):
        raise BayesHCCError(f"{caller}: {name}={list(out)} must be finite numbers.")
    return out


def as_names(value, caller: str, name: str, known, example: str | None = None) -> tuple:
    """One name or a sequence of names, each one of ``known``, as a tuple; else a
    :class:`BayesHCCError` naming the function, the argument, the unknown names (with the
    nearest known one) and the choices. One text is one name: iterated, ``"log_hr"`` was
    the names ``l``, ``o``, ``g``, ..., and ``"cox_site"`` contained ``"cox"``."""
    known = [str(k) for k in known]
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise BayesHCCError(f"{caller}: {name} is empty; choose from {', '.join(known)}"
                            + (f", e.g. {name}={example}" if example else "") + ".")
    unknown = [n for n in names if str(n) not in known]
    if unknown:
        raise BayesHCCError(f"{caller}: {name}: unknown {did_you_mean(unknown, known)}; "
                            f"choose from {', '.join(known)}.")
    return tuple(str(n) for n in names)


def repeated(names) -> str:
    """The names listed more than once, quoted and joined ("" when none): a covariate
    listed twice is refused by the spec and by ``bh.IllnessDeath`` with the same words."""
    names = list(names)
    return ", ".join(map(repr, sorted({n for n in names if names.count(n) > 1})))


def as_text(value, where: str, what: str, *, empty: bool = False) -> str:
    """A name or description given as text, refused otherwise as ``"<where> = 2 must be
    text (<what>)."`` (a number was read as its digits: a look named 2 beside
    ``plan.look(2)``, the second look); blank text too unless ``empty``."""
    if not isinstance(value, str) or not (empty or value.strip()):
        raise SpecError(f"{where} = {value!r} must be text ({what}).")
    return value


def user_path(value, caller: str, what: str):
    """A path the user gave, ``~`` expanded; anything else (a fit, a trial, a number, an
    empty string) refused by name: pathlib's TypeError named neither the call nor the
    argument, and ``""`` was the current directory."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        got = "an empty path" if isinstance(value, str) else type(value).__name__
        raise BayesHCCError(f"{caller}: expected the path of {what}, got {got}.")
    return Path(value).expanduser()


def refuse_ignored(where: str, given, purpose: str, way_out: str | None = None) -> None:
    """Refuse settings a call would ignore without a word: ``"<where>: a and b are for
    <purpose>: <way_out>, or leave them out."`` (nothing when ``given`` is empty)."""
    given = list(given)
    if not given:
        return
    one = len(given) == 1
    leave = f"leave {'it' if one else 'them'} out"
    raise BayesHCCError(f"{where + ': ' if where else ''}{' and '.join(given)} "
                        f"{'is' if one else 'are'} for {purpose}: "
                        f"{f'{way_out}, or {leave}' if way_out else leave}.")


def did_you_mean(unknown, known) -> str:
    """The unknown names, each with the nearest known one when there is a close one:
    ``'loghr' (did you mean 'log_hr'?), 'x'``."""
    import difflib

    known = [str(k) for k in known]
    return ", ".join(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if (
        close := difflib.get_close_matches(str(n), known, n=1, cutoff=0.6)) else "")
        for n in unknown)


def one_number(value, caller: str, name: str, example: str) -> float:
    """One finite number (a number written as text is read), else a :class:`BayesHCCError`
    naming the function and the argument; several numbers are refused, saying to call once
    per value (``rmst(fit, tau=[12, 18])`` failed inside ``float``)."""
    import numpy as np

    if not isinstance(value, (str, bytes)) and np.ndim(value) > 0:
        if np.size(value) != 1:
            raise BayesHCCError(f"{caller}: {name}={value!r} is several numbers; {name} is "
                                f"one (e.g. {name}={example}): call {caller} once per value.")
        value = np.asarray(value).ravel()[0]
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BayesHCCError(f"{caller}: {name}={value!r} must be a number, e.g. "
                            f"{name}={example}.") from None
    if not np.isfinite(out):
        raise BayesHCCError(f"{caller}: {name}={value!r} must be a finite number.")
    return out


def one_prob(value, caller: str) -> float:
    """A credible level: one number strictly between 0 and 1, else a :class:`BayesHCCError`
    naming the function (``prob=95`` failed inside numpy's quantile, or drew a band from
    the 2.5th to the 97.5th draw-quantile nobody asked for)."""
    out = one_number(value, caller, "prob", "0.95")
    if not 0 < out < 1:
        raise BayesHCCError(f"{caller}: prob={value!r} must be strictly between 0 and 1 "
                            "(0.95 for 95% credible intervals).")
    return out


def whole_number(value, caller: str, name: str, minimum: int, *, what: str = "",
                 noun: str = "a whole number", error=None) -> int:
    """``value`` as an int >= ``minimum`` (numpy integers are integers; True, 2.5 and "3"
    are not), else ``error`` (default :class:`BayesHCCError`) naming the function and the
    argument, with ``what`` it counts (``thin=0`` failed inside a slice, ``n=2.5`` inside
    numpy)."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise (error or BayesHCCError)(f"{caller}: {name}={value!r} must be {noun} >= "
                                       f"{minimum}{what}.")
    return int(value)


def bool_flags(func=None, *, error=None):
    """Refuse anything but True or False for the parameters of ``func`` whose default is
    True or False, naming the function and the argument: ``overwrite="no"``,
    ``fast="false"`` or ``warn=0.5`` counted as True (a file overwritten, a confirmatory
    look recorded as exploratory). ``None`` is refused too; numpy booleans are booleans.
    The signature is read once, when the function is decorated. ``error``: the class
    raised (default :class:`BayesHCCError`; ``@bool_flags(error=ModelError)``)."""
    if func is None:
        return lambda f: bool_flags(f, error=error)
    import functools
    import inspect

    import numpy as np

    sig = inspect.signature(func)
    names = [p.name for p in sig.parameters.values() if isinstance(p.default, bool)]
    method = "." in func.__qualname__  # a method: named by the instance's class

    @functools.wraps(func)
    def checked(*args, **kwargs):
        # the first positional argument is never a flag (a trial, a fit, or self)
        try:
            given = kwargs if len(args) <= 1 else sig.bind_partial(*args, **kwargs).arguments
        except TypeError:  # the binding's message names no function ("got an unexpected
            return func(*args, **kwargs)  # keyword argument 'drawz'"): Python's call does
        for name in names:
            if name in given and not isinstance(given[name], (bool, np.bool_)):
                caller = f"{type(args[0]).__name__}.{func.__name__}" if method and args \
                    else func.__qualname__  # e.g. WeibullPH.fit, write_adtte
                raise (error or BayesHCCError)(
                    f"{caller}: {name}={given[name]!r} must be True or False (a value such "
                    f"as 'no' or 0.5 would count as True).")
        return func(*args, **kwargs)

    return checked
