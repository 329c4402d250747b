"""What a notebook shows for a fit (``_repr_html_`` of ``Fit`` and ``IllnessDeathFit``):
their one-line description, their headline, the diagnostics' verdict and what the data
warned of, in one layout. Depends on nothing else in the package."""

from __future__ import annotations

import html

__all__ = ["fit_card"]


def fit_card(description: str, headline: str, problems: list[str], exploratory: bool,
             notes: list[str], more: str) -> str:
    """HTML of a fit: ``description`` (text, escaped), ``headline`` (HTML), the failed
    checks ``problems`` (text; none: "Diagnostics OK"), whether the fit was made in fast
    mode, the data's warnings ``notes`` (text) and a pointer to the rest (HTML)."""
    if problems:
        verdict = ("<b style='color:#cf222e'>Diagnostics FAILED</b>"
                   + (" (exploratory thresholds: fast mode)" if exploratory else "")
                   + ": " + html.escape("; ".join(problems))
                   + ". The posterior may be unreliable; bh.check(fit) explains each check.")
    else:
        verdict = "<b style='color:#1a7f37'>Diagnostics OK</b>" + (
            " (exploratory: fast mode, not for inference)" if exploratory else "")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<p><code>{html.escape(description)}</code></p>{headline}<p>{verdict}</p>"
            + (f"<p>The data warned:</p><ul>{items}</ul>" if items else "")
            + f"<p>{more}</p>")
