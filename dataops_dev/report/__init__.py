"""The typed review report and its renderers (text, markdown, JSON, HTML)."""

from __future__ import annotations

from dataops_dev.report.model import SCHEMA_VERSION, Report, Verdict

__all__ = ["SCHEMA_VERSION", "Report", "Verdict"]
