"""URL slugs from titles."""

import re
import unicodedata


def slugify(title: str) -> str:
    """Lowercase ASCII words joined by single dashes: "Hello,  World!" -> "hello-world"."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "-", text.lower())
