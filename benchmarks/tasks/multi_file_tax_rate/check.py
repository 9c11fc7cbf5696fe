"""Solved when settings.TAX_RATE is 0.2, both modules use it (no rate literal of their own) and prices follow it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

import ast

from checks import hidden_tests_pass, pytest_passes, require

for name in ("invoice.py", "quote.py"):
    numbers = {n.value for n in ast.walk(ast.parse(Path(name).read_text())) if isinstance(n, ast.Constant)}
    require(not numbers & {0.19, 1.19, 0.2, 1.2, 19, 20}, f"{name} still writes the rate out")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass("test_tax_rate.py"), "the hidden tests fail")
