"""The import-linter contracts in pyproject.toml ([tool.importlinter]) hold, and they do catch a violation."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_import_contracts_are_kept():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "3 kept, 0 broken" in r.stdout


def test_contracts_catch_an_upward_import_a_circle_and_an_algorithm_calling_a_loop(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "deeprl", tmp_path / "deeprl", ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    (tmp_path / "deeprl" / "envs" / "_bad.py").write_text("import deeprl.planning.lqr\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "deeprl.envs is not allowed to import deeprl.planning" in r.stdout
    (tmp_path / "deeprl" / "envs" / "_bad.py").unlink()
    (tmp_path / "deeprl" / "data" / "_a.py").write_text("import deeprl.data._b\n")
    (tmp_path / "deeprl" / "data" / "_b.py").write_text("import deeprl.data._a\n")
    r = _lint(tmp_path)
    assert r.returncode != 0 and "2 kept, 1 broken" in r.stdout
    assert "No import circles" in r.stdout.split("Broken contracts")[-1]
    for f in ("_a.py", "_b.py"):
        (tmp_path / "deeprl" / "data" / f).unlink()
    (tmp_path / "deeprl" / "algos" / "_bad.py").write_text("from deeprl.runners import collect_loop\n")
    r = _lint(tmp_path)
    assert r.returncode != 0 and "Algorithms do not call the loops" in r.stdout.split("Broken contracts")[-1]
