import json
import time
import urllib.request

RETRIES = 6
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 10


def fetch_json(url: str) -> dict:
    """GET `url` and decode it; failed attempts are retried with a growing pause."""
    last_error: Exception | None = None
    for attempt in range(RETRIES + 1):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                return json.load(response)
        except OSError as e:
            last_error = e
            time.sleep(BACKOFF_SECONDS * 2**attempt)
    raise RuntimeError(f"{url} failed: {last_error}")
