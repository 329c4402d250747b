"""What a notebook shows for a fit (``_repr_html_`` of ``Fit``, ``IllnessDeathFit`` and an
interim look): their one-line description, their headline, the diagnostics' verdict and what
the data warned of, in one layout; the data's warnings as the HTML report lists them too.
Depends on nothing else in the package."""

from __future__ import annotations

import html

__all__ = ["fit_card", "data_notes_html"]


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
    return (f"<p><code>{html.escape(description)}</code></p>{headline}<p>{verdict}</p>"
            f"{data_notes_html(notes)}<p>{more}</p>")


def data_notes_html(notes: list[str]) -> str:
    """What the data warned of when a fit was made (its ``data_notes``), as an HTML list
    (empty when nothing): in a notebook and in the HTML report alike."""
    if not notes:
        return ""
    return ("<p class='fail'>The data warned:</p><ul>"
            + "".join(f"<li>{html.escape(n)}.</li>" for n in notes) + "</ul>")
