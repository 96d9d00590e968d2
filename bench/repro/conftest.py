"""Reproductions found by the torture scripts (bench/torture_*.py). They are kept out of the test
suite (some fail until gitforge is fixed); run them with

    python -m pytest -q bench/repro

The fixtures and helpers are those of tests/conftest.py, loaded under another module name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("gitforge_tests_conftest", _path)
_mod = importlib.util.module_from_spec(_spec)
sys.modules["gitforge_tests_conftest"] = _mod
_spec.loader.exec_module(_mod)

sealed_env = _mod.sealed_env
make_repo = _mod.make_repo
