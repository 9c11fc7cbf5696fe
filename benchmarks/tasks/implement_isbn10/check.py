"""Solved when the repository's tests pass unchanged and the hidden tests pass too."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require, unchanged

require(unchanged('tests/test_isbn.py'), "the tests were edited")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass('test_isbn_more.py'), "the hidden tests fail")
