"""orders/ never imports live/ (DESIGN.md): the reports reach live_session through a table."""

from __future__ import annotations

import ast
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[3] / "orders" / "reports"


def test_orders_reports_never_import_live():
    imported = set()
    for path in REPORTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert imported, "no imports found: wrong folder?"
    assert not [name for name in imported if name == "live" or name.startswith("live.")]
