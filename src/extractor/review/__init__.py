"""The review page, the one presentation of a run's results as HTML, and the digest's text summary.

Python builds the page's data -- highlight segments and marks (``marks``), each article's section
(``article``), the summary, chart, run lines and history (``summary``), the digest's section and text
(``digest_view``) -- and Jinja2 templates in ``templates/`` (autoescape on, CSS and JS beside them) render
it (``page``). ``folder`` reads a run folder and writes its page.
"""

from __future__ import annotations

from extractor.review.digest_view import render_digest_text
from extractor.review.folder import REPORT_FILE, FolderContents, read_folder, write_report, write_review_page
from extractor.review.marks import Mark, Segment, build_segments
from extractor.review.page import (
    CSP,
    OPEN_LIMIT,
    article_anchors,
    content_security_policy,
    digest_html_section,
    in_page_order,
    render_report,
)

__all__ = [
    "CSP",
    "OPEN_LIMIT",
    "REPORT_FILE",
    "FolderContents",
    "Mark",
    "Segment",
    "article_anchors",
    "build_segments",
    "content_security_policy",
    "digest_html_section",
    "in_page_order",
    "read_folder",
    "render_digest_text",
    "render_report",
    "write_report",
    "write_review_page",
]
