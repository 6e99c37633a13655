"""Under SOCIALARK_TESTS_REQUIRE_ALL=1 (set by scripts/test.sh) a skip is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REQUIRE_ALL_ENV, ROOT

INNER_CONFTEST = """
from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401
"""

INNER_TESTS = {
    "test_skips.py": "import pytest\n\ndef test_needs_tool():\n    pytest.skip('tool is not installed')\n",
    "test_importorskip.py": "import pytest\n\npytest.importorskip('no_such_module_socialark')\n\n"
                            "def test_never():\n    pass\n",
    "test_passes.py": "def test_ok():\n    assert 1 + 1 == 2\n",
    "test_xfail.py": "import pytest\n\n@pytest.mark.xfail(reason='known')\ndef test_known():\n"
                     "    assert False\n",
}


def _run_inner(tmp_path: Path, names: list[str], require_all: str | None,
               *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    for name in names:
        (tmp_path / name).write_text(INNER_TESTS[name])
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ALL_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if require_all is not None:
        env[REQUIRE_ALL_ENV] = require_all
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )


def test_a_skipping_test_fails_when_everything_is_required(tmp_path: Path) -> None:
    proc = _run_inner(tmp_path, ["test_skips.py", "test_passes.py", "test_xfail.py"], "1")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed, 1 xfailed" in proc.stdout, proc.stdout
    assert "tool is not installed" in proc.stdout


def test_a_module_level_importorskip_fails_the_run(tmp_path: Path) -> None:
    proc = _run_inner(tmp_path, ["test_importorskip.py", "test_passes.py"], "1")
    assert proc.returncode != 0, proc.stdout
    assert "no_such_module_socialark" in proc.stdout
    assert "skipped" not in proc.stdout.strip().splitlines()[-1]


def test_plain_runs_still_skip(tmp_path: Path) -> None:
    proc = _run_inner(tmp_path, list(INNER_TESTS), None)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in proc.stdout, proc.stdout


def test_a_skip_fails_under_parallel_workers_too(tmp_path: Path) -> None:
    """scripts/test.sh runs most of the suite under pytest-xdist: the rule holds there."""
    proc = _run_inner(tmp_path, ["test_skips.py", "test_passes.py", "test_xfail.py"], "1",
                      "-n", "2")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed, 1 xfailed" in proc.stdout, proc.stdout
    assert "tool is not installed" in proc.stdout
