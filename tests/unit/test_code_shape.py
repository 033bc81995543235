"""Habits the code keeps, held by a test so that they are not kept by memory alone (ruff's mccabe
rule holds complexity; this holds length)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Long functions hide their steps; the Powertools source keeps most under 40 lines.
MAX_FUNCTION_LINES = 50


def functions_over(limit: int, *folders: str, root: Path = ROOT) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > limit:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_of_the_layer_or_the_sandbox_is_longer_than_fifty_lines():
    assert functions_over(MAX_FUNCTION_LINES, "layers/portdocs/portdocs", "sandbox/portdocs_sandbox") == []


def test_the_length_check_finds_a_long_function(tmp_path: Path):
    long_one = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(long_one)
    assert functions_over(MAX_FUNCTION_LINES, "pkg", root=tmp_path) == [
        f"pkg/m.py:1 f ({MAX_FUNCTION_LINES + 1} lines)"
    ]
