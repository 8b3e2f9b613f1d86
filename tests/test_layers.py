"""The package's imports go one way: from the user API down the pipeline, never back.

Checked twice: by import-linter's layers contract (pyproject.toml) and by tools/layers.py,
which also finds cycles within a layer and imports inside functions."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*cmd, cwd=ROOT):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_linter_contract_is_kept():
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if not os.path.exists(lint):
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    r = run(lint)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tools/layers.py reads pyproject.toml with tomllib")
def test_layers_tool_finds_no_cycle_and_no_back_edge():
    r = run(sys.executable, "tools/layers.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: no cycle, no back edge" in r.stdout
    for stage in ("frontend", "normalize", "analysis", "transform", "optimize", "codegen", "backends", "api"):
        assert f"\n  {stage}\n" in r.stdout


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tools/layers.py reads pyproject.toml with tomllib")
def test_layers_tool_fails_on_an_import_that_goes_up(tmp_path):
    shutil.copytree(os.path.join(ROOT, "s2sad"), tmp_path / "s2sad", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(ROOT, "tools"), tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    normalize = tmp_path / "s2sad" / "normalize" / "__init__.py"
    normalize.write_text(normalize.read_text() + "\n\ndef _late():\n    from ..api import transforms  # noqa\n")
    r = run(sys.executable, "tools/layers.py", cwd=tmp_path)
    assert r.returncode == 1
    assert "back edge s2sad.normalize -> s2sad.api.transforms" in r.stdout
    assert "import cycle" in r.stdout   # api imports normalize: the two import each other
