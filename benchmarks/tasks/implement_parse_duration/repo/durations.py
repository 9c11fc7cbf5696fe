"""Durations written the way people type them: "1h30m", "45s", "2h5m10s"."""


def parse_duration(text: str) -> int:
    """The number of seconds in `text`: one or more <integer><unit> parts, units h, m and s, in
    that order, each at most once (e.g. "1h30m" -> 5400, "90s" -> 90, "2h5m10s" -> 7510).
    Surrounding whitespace is ignored. Raises ValueError for an empty string, an unknown unit,
    a number without a unit or units out of order."""
    raise NotImplementedError


def format_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs or not seconds else ""]
    return "".join(parts)
