"""Solved when the old name is gone from every Python file, the new one works, and the tests pass."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, no_identifier, pytest_passes, require

require(no_identifier("Acct"), "the old name is still used")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass("test_renamed_class.py"), "the hidden tests fail")
