"""Print how often each word occurs in a text file, most frequent first."""

import argparse
import re
from collections import Counter


def count_words(text: str) -> list[tuple[str, int]]:
    counts = Counter(re.findall(r"[a-z']+", text.lower()))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    args = parser.parse_args(argv)
    with open(args.file) as f:
        for word, count in count_words(f.read()):
            print(f"{count} {word}")


if __name__ == "__main__":
    main()
