"""Docstring check with ament's pep257 settings."""
from pathlib import Path

from ament_pep257.main import main
import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    assert main(argv=[str(PACKAGE_DIR)]) == 0, 'Found docstring style errors / warnings'
