import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["training", "training.config", "training.evaluate", "training.templates"])
def test_it_imports_without_torch(module):
    # The web process imports these (the package, configs, the metric functions); torch, which
    # takes seconds and hundreds of megabytes, must wait for the modules that train or serve.
    heavy = "('torch', 'transformers', 'trl')"
    code = f"import sys, {module}; print(sorted(m for m in {heavy} if m in sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
