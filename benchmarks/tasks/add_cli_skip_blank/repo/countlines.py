"""Count the lines of files: `python countlines.py FILE...` prints "<count> <file>" per file and a total."""

import sys
from pathlib import Path


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: countlines.py FILE...", file=sys.stderr)
        return 2
    total = 0
    for name in argv:
        count = count_lines(Path(name))
        total += count
        print(f"{count} {name}")
    print(f"{total} total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
