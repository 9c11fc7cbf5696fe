"""Solved when --skip-blank works in either position, plain counting is unchanged, and a test covers it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require

tests = "".join(p.read_text() for p in Path("tests").glob("test_*.py"))
require("--skip-blank" in tests, "no test in tests/ uses --skip-blank")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass("test_skip_blank.py"), "the hidden tests fail")
