"""The layers of the distribution, checked with import-linter on the installed layout:
train/ and export/ use the runtime (and not each other), the runtime uses neither.

train/ and export/ live at the top of the repository and install under avvp_stream
(setuptools' package-dir mapping), so the check runs on a wheel of this tree, unpacked:
that is the layout import-linter must see."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def installed_layout(tmp_path_factory) -> Path:
    pytest.importorskip("importlinter")
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(REPO), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = out / "site"
    with zipfile.ZipFile(next(out.glob("avvp_stream-*.whl"))) as whl:
        whl.extractall(site)
    return site


def lint(site: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "lint-imports"
    cmd = [str(script)] if script.exists() else [shutil.which("lint-imports")]
    return subprocess.run([*cmd, "--config", str(REPO / "pyproject.toml")], cwd=site, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)})


def test_layer_contracts_are_kept(installed_layout):
    proc = lint(installed_layout)
    assert proc.returncode == 0 and "1 kept, 0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert (installed_layout / "avvp_stream" / "train" / "fit.py").is_file()  # the mapped packages are there


def test_a_runtime_import_of_export_breaks_the_contract(installed_layout, tmp_path):
    """The check has teeth: the runtime importing export/ (as it once did) is caught."""
    site = tmp_path / "site"
    shutil.copytree(installed_layout, site)
    model = site / "avvp_stream" / "model.py"
    model.write_text(model.read_text() + "\nfrom avvp_stream.export import onnx_export  # noqa\n")
    proc = lint(site)
    assert proc.returncode != 0 and "BROKEN" in proc.stdout
    assert "avvp_stream.model -> avvp_stream.export.onnx_export" in proc.stdout
