"""docs/security.md is rendered from the security matrix in code and must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from platformdb import security, security_doc

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"


def test_the_committed_document_matches_the_matrix() -> None:
    assert security_doc.diff(DOC) == "", "docs/security.md is out of date: run `platformdb security-doc --write`"


def test_every_table_of_the_matrix_has_its_row() -> None:
    text = security_doc.render()
    for table in security.load():
        assert f"| `{table}` |" in text


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platformdb.cli", "security-doc", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_check_fails_on_a_stale_file_and_write_repairs_it(tmp_path: Path) -> None:
    stale = tmp_path / "security.md"
    stale.write_text(security_doc.render().replace("| `system_metrics` |", "| `system_metrics_old` |"))
    r = _cli("--check", "--path", str(stale))
    assert r.returncode == 1
    assert "system_metrics_old" in r.stdout and "out of date" in r.stderr
    assert _cli("--write", "--path", str(stale)).returncode == 0
    assert _cli("--check", "--path", str(stale)).returncode == 0
    assert stale.read_text() == security_doc.render()
