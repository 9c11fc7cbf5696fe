"""Solved when the repository's tests pass unchanged and the hidden tests pass too."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require, unchanged

require(unchanged('test_pages.py'), "the tests were edited")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass('test_more_pages.py'), "the hidden tests fail")
