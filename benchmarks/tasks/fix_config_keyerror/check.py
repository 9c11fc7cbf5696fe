"""Solved when serve.py runs on example.env and missing keys take their defaults."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))

from checks import hidden_tests_pass, pytest_passes, require

from checks import run

done = run(sys.executable, "serve.py", "example.env")
require(done.returncode == 0 and "0.0.0.0:8080" in done.stdout, f"serve.py example.env: {done.stdout}{done.stderr}")
require(pytest_passes(), "the repository's tests fail")
require(hidden_tests_pass('test_settings.py'), "the hidden tests fail")
