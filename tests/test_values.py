"""Values folded from Python code without running it: module constants across imports, arithmetic
on them inside functions, range lengths; anything else is left alone."""

from __future__ import annotations

from agent.core.values import MAX_HINTS, value_hints

CONFIG = "BASE_PORT = 8000\nADMIN_OFFSET = 1\nPUBLIC_OFFSET = 80\n"
SERVER = ("from config import BASE_PORT, PUBLIC_OFFSET\n\nDEFAULT_PORT = BASE_PORT + PUBLIC_OFFSET\n\n\n"
          "def serve(port=None):\n    listen(port or DEFAULT_PORT)\n")
FETCH = ("RETRIES = 6\nPAUSE = 0.5\n\n\ndef fetch(url):\n    for attempt in range(RETRIES + 1):\n"
         "        sleep(PAUSE * 2**attempt)\n")


def test_constants_are_followed_across_imports_and_shown_where_a_function_uses_them():
    hints = value_hints({"server.py": SERVER, "config.py": CONFIG})  # the order of the files does not matter
    assert hints == ["server.py:3  DEFAULT_PORT = BASE_PORT + PUBLIC_OFFSET = 8080", "server.py:7  DEFAULT_PORT = 8080"]


def test_a_range_over_constants_says_how_many_passes_it_makes():
    assert value_hints({"fetch.py": FETCH}) == ["fetch.py:6  range(RETRIES + 1) = range(7): 7 passes"]


def test_what_depends_on_a_variable_or_a_call_is_not_folded():
    code = ("import os\nLIMIT = int(os.environ.get('LIMIT', 5))\nCOUNT = 1\nCOUNT = COUNT + 1\nSIZE = 4\n\n\n"
            "def f(SIZE):\n    return LIMIT * 2 + COUNT * 3 + SIZE * 5\n\n\ndef g():\n    global TOTAL\n    TOTAL = 3\n")
    assert value_hints({"m.py": code}) == []  # a call, a rebound name, a parameter hiding a constant


def test_values_too_big_to_build_are_not_built():
    code = ("HUGE = 10 ** 10 ** 10\nLONG = 'x' * 10**9\nZERO = 1 / 0\nPART = 'ab'\n\n\n"
            "def f():\n    return HUGE + 1, LONG + 'y', ZERO + 1, PART * 3\n")
    assert value_hints({"m.py": code}) == ["m.py:8  PART * 3 = 'ababab'"]


def test_files_that_are_not_python_or_do_not_parse_are_skipped_and_the_hints_are_bounded():
    many = "A = 1\n" + "".join(f"V{i} = A + {i}\n" for i in range(40))
    assert value_hints({"notes.md": "X = 1 + 2", "broken.py": "def (:\n", "many.py": many})[:2] == [
        "many.py:2  V0 = A + 0 = 1", "many.py:3  V1 = A + 1 = 2"]
    assert len(value_hints({"many.py": many})) == MAX_HINTS


def test_a_package_module_is_found_by_its_dotted_name():
    files = {"app/settings.py": "TIMEOUT = 30\n", "app/client.py": "from app.settings import TIMEOUT\n\n\ndef wait():\n    return TIMEOUT * 2\n"}
    assert value_hints(files) == ["app/client.py:5  TIMEOUT * 2 = 60"]
