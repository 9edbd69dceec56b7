"""Wait for something only the filesystem shows (a file another process writes): poll it."""
import time


def wait_for(condition, timeout: float) -> bool:
    """Poll condition() every 20 ms until it is true or `timeout` seconds pass; return it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)   # polling a directory: no event to wait on
    return True
