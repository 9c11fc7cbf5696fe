"""Small numeric helpers."""


def clamp(value: float, low: float, high: float) -> float:
    """`value` limited to the range [low, high]. Raises ValueError when low > high."""
    if low > high:
        raise ValueError(f"low ({low}) is above high ({high})")
    return max(low, min(value, high))
