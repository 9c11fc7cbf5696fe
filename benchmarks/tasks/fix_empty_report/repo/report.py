"""Print the count, total and average of the amounts in a CSV file (columns: name, amount)."""

import csv
import sys


def read_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summarize(rows: list[dict[str, str]]) -> dict[str, float]:
    total = sum(float(row["amount"]) for row in rows)
    return {"count": len(rows), "total": total, "average": total / len(rows)}


def render(summary: dict[str, float]) -> str:
    return f"{summary['count']} rows, total {summary['total']:.2f}, average {summary['average']:.2f}"


if __name__ == "__main__":
    print(render(summarize(read_rows(sys.argv[1]))))
