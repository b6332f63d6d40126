"""The package installs everything it imports: a module-level import of a third-party package
anywhere in deeprl/ must be a core dependency in pyproject.toml, not only a test or bench extra
(the suite installs the test extra, so a missing core dependency would pass here and break
`scripts/quickstart.sh` on a fresh machine)."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parent.parent
IMPORT_TO_DIST = {"yaml": "pyyaml", "cv2": "opencv-python-headless", "ale_py": "ale-py"}


def module_level_imports() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "deeprl").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # imports inside functions are optional paths
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("deeprl", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_module_level_import_is_a_core_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    core = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in deps}
    imports = module_level_imports()
    assert {"torch", "numpy", "gymnasium"} <= imports.keys()  # the scan sees the package
    missing = {name: where for name, where in imports.items() if IMPORT_TO_DIST.get(name, name) not in core}
    assert not missing, f"imported at module level but not a core dependency: {missing}"
