"""The package as a whole: light imports, and CI running the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_import_is_light():
    code = (
        "import sys, dense_edge, dense_edge.models, dense_edge.targets, dense_edge.recipe; "
        "print(sorted({'torch', 'openvino', 'tensorrt', 'onnxruntime', 'nncf'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"# 2\. run the tests.*?\n(.+)\n", readme)
    assert block, "README lost its test command"
    assert block.group(1).strip() in (REPO / ".ci" / "run").read_text()
