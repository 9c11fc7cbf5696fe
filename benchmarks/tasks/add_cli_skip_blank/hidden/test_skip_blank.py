import subprocess
import sys


def test_skip_blank(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x\n\n   \ny\n\t\n")
    run = lambda *args: subprocess.run([sys.executable, "countlines.py", *args], capture_output=True, text=True)
    assert run("--skip-blank", str(a)).stdout.splitlines() == [f"2 {a}", "2 total"]
    assert run(str(a), "--skip-blank").stdout.splitlines() == [f"2 {a}", "2 total"]
    assert run(str(a)).stdout.splitlines() == [f"5 {a}", "5 total"]
