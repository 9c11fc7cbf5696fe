import sys

from settings import load_settings


def main(argv: list[str]) -> None:
    settings = load_settings(argv[0])
    print(f"serving on {settings.host}:{settings.port} (debug {'on' if settings.debug else 'off'})")


if __name__ == "__main__":
    main(sys.argv[1:])
