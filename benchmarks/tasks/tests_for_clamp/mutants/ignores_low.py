def clamp(value, low, high):
    if low > high:
        raise ValueError("low is above high")
    return min(value, high)
