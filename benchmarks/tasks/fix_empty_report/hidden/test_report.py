from report import render, summarize


def test_two_rows():
    summary = summarize([{"name": "a", "amount": "1"}, {"name": "b", "amount": "2"}])
    assert render(summary) == "2 rows, total 3.00, average 1.50"
