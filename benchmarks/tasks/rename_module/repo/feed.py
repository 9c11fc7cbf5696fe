import helpers


def headlines(items: list[str], width: int = 30) -> list[str]:
    return [helpers.truncate(item, width) for item in items]
