"""Solved when --limit works, the old behaviour stays, and the repository's tests (with a new one for --limit) pass."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require

require("--limit" in Path("test_wordfreq.py").read_text(), "test_wordfreq.py has no test for --limit")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass("test_limit.py"), "the hidden tests fail")
