"""Server settings read from a KEY=VALUE file."""

from dataclasses import dataclass
from pathlib import Path

DEFAULTS = {"host": "127.0.0.1", "port": "8000", "debug": "false"}


@dataclass
class Settings:
    host: str
    port: int
    debug: bool


def load_settings(path: str) -> Settings:
    """Read KEY=VALUE lines (# starts a comment); keys missing from the file keep their defaults."""
    values: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return Settings(
        host=values["host"],
        port=int(values["port"]),
        debug=values["debug"].lower() == "true",
    )
