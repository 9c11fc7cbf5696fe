"""Solved when helpers.py is gone, text_utils.py holds its functions, nothing imports helpers and the tests pass."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, no_module_reference, pytest_passes, require

require(not Path("helpers.py").exists(), "helpers.py is still there")
require(Path("text_utils.py").is_file(), "there is no text_utils.py")
require(no_module_reference("helpers"), "something still imports helpers")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass("test_text_utils.py"), "the hidden tests fail")
