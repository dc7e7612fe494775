"""Reporting: tables, CSV exports, figures, wins and report.md from a results store."""
