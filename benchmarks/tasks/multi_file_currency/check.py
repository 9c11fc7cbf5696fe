"""Solved when the currency is stored, loaded (EUR for old records) and shown."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require

require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass('test_currency.py'), "the hidden tests fail")
