"""Solved when the agent's tests pass on calendar_utils.py and fail on every mutant of it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import require, tests_catch_mutants

require(Path("test_calendar_utils.py").is_file(), "there is no test_calendar_utils.py")
tests_catch_mutants("calendar_utils.py", "test_calendar_utils.py")
