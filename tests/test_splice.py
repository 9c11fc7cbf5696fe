"""One function rewritten by the model, put back in its file."""

from __future__ import annotations

from agent.core.splice import focus_function, function_source, splice_function

STATS = '''"""Statistics."""

import math


def mean(values):
    return sum(values) / len(values)


@staticmethod_like
def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle + 1]


def spread(values):
    return max(values) - min(values)
'''


def test_the_one_function_a_diagnosis_names_is_the_focus():
    assert focus_function(STATS, "The bug is in `median`: it returns ordered[middle + 1].") == "median"
    assert focus_function(STATS, "median() picks the wrong element") == "median"
    assert focus_function(STATS, "mean and median both ...") is None  # two named: the whole file
    assert focus_function(STATS, "stats.median is wrong") is None  # an attribute, not this file's name
    assert focus_function(STATS, "Nothing named here.") is None
    assert focus_function("def broken(:\n", "broken") is None


def test_the_function_replaces_its_old_text_decorators_included_and_the_rest_stays():
    reply = "def median(values):\n    ordered = sorted(values)\n    middle = len(ordered) // 2\n    return (ordered[middle - 1] + ordered[middle]) / 2\n"
    spliced = splice_function(STATS, "median", reply)
    assert spliced == STATS.replace("@staticmethod_like\ndef median(values):\n    ordered = sorted(values)\n    middle = len(ordered) // 2\n    return ordered[middle + 1]\n", reply)
    assert "def mean" in spliced and "def spread" in spliced and "import math" in spliced
    assert function_source(STATS, "median").startswith("@staticmethod_like\ndef median")


def test_new_imports_and_helpers_come_along_and_a_whole_file_reply_works_too():
    reply = "import re\nimport math\n\n\ndef _middle(ordered):\n    return len(ordered) // 2\n\n\ndef median(values):\n    return sorted(values)[_middle(values)]\n"
    spliced = splice_function(STATS, "median", reply)
    assert spliced.count("import math") == 1 and "import math\nimport re\n" in spliced
    assert spliced.index("def median") < spliced.index("def _middle") < spliced.index("def spread")
    compile(spliced, "stats.py", "exec")
    whole = STATS.replace("ordered[middle + 1]", "ordered[middle]").replace("max(values) - min(values)", "max(values)")
    assert splice_function(STATS, "median", whole) == whole  # every definition replaced by its new text


def test_a_reply_without_the_function_or_that_does_not_parse_is_refused():
    assert splice_function(STATS, "median", "def mean(values):\n    return 0\n") is None
    assert splice_function(STATS, "median", "def median(values:\n") is None
