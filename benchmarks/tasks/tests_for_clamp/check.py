"""Solved when the agent's tests pass on mathutil.py and fail on every mutant of it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import require, tests_catch_mutants

require(Path("tests/test_mathutil.py").is_file(), "there is no tests/test_mathutil.py")
tests_catch_mutants("mathutil.py", "tests/test_mathutil.py")
