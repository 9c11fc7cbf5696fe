"""Solved when the empty file prints 'no rows' and other files still report the same."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require

from checks import run

empty = run(sys.executable, "report.py", "empty.csv")
require(empty.returncode == 0 and "no rows" in empty.stdout.lower(), f"empty.csv: {empty.stdout}{empty.stderr}")
sales = run(sys.executable, "report.py", "sales.csv")
require(sales.stdout.strip() == "3 rows, total 10.00, average 3.33", f"sales.csv: {sales.stdout}{sales.stderr}")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass('test_report.py'), "the hidden tests fail")
