"""Report formats. Each turns a ``ScanReport`` into text; none ever sees a plaintext secret unless
the user asked for ``--show-secrets`` (then ``Finding.secret`` is set)."""

from __future__ import annotations

import enum
import os
from typing import assert_never

from secretscan.models import ScanReport


@enum.unique
class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"
    JUNIT = "junit"
    GITLAB = "gitlab-secret-detection"

    def render(self, report: ScanReport, *, color: bool = False) -> str:
        if self is OutputFormat.TEXT:
            from secretscan.report.text import render_text

            return render_text(report, color=color)
        if self is OutputFormat.JSON:
            from secretscan.report.json_report import render_json

            return render_json(report)
        if self is OutputFormat.SARIF:
            from secretscan.report.sarif import render_sarif

            return render_sarif(report)
        if self is OutputFormat.HTML:
            from secretscan.report.html import render_html

            return render_html(report)
        if self is OutputFormat.JUNIT:
            from secretscan.report.junit import render_junit

            return render_junit(report)
        if self is OutputFormat.GITLAB:
            from secretscan.report.gitlab import render_gitlab

            # GitLab CI names the pipeline's commit; the report falls back to it (see report.gitlab)
            return render_gitlab(report, pipeline_commit=os.environ.get("CI_COMMIT_SHA"))
        assert_never(self)
