"""HTML -> PDF for the monthly document, through WeasyPrint.

WeasyPrint rather than headless Chromium's print-to-PDF: it is a library (no browser
process, no sandbox flags, no profile directory, ~10 MB instead of ~300 MB), it
implements CSS paged media (``@page`` margin boxes: page numbers and a running footer
on every page, which Chromium ignores), it finds the fonts through fontconfig (Noto Sans
or DejaVu Sans: full Vietnamese), and the same input gives the same PDF. Chromium is used
in the tests only, to look at the HTML as a browser shows it.
"""

from __future__ import annotations

import logging


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML document (nothing is fetched)."""
    # WeasyPrint logs every layout step at INFO and CSS it skips at WARNING: not news
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]  # ships no type hints
    except ImportError as exc:  # an optional extra
        raise RuntimeError("PDF output needs WeasyPrint: pip install 'xanet[report]'") from exc
    pdf: bytes = HTML(string=html, base_url=None).write_pdf()
    return pdf
