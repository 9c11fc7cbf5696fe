def clamp(value, low, high):
    if low > high:
        raise ValueError("low is above high")
    return max(low, value)
