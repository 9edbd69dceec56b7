"""Child processes of the benchmark: their output collected, their environment."""
import json
from pathlib import Path
import re
import signal
import subprocess
import threading
import time
from typing import Dict, List, Optional

from softmaint_ros.children import child_env as ros_child_env


class Child:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, name: str, cmd: List[str], env: Dict[str, str]):
        self.name = name
        self.lines: List[str] = []
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip('\n'))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """Wait for an output line matching `pattern`; raise RuntimeError naming why not."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f'{self.name} exited with {self.proc.returncode} '
                                       f'before printing {pattern!r}:\n{self.tail()}')
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f'{self.name} did not print {pattern!r} in {timeout} s:'
                                       f'\n{self.tail()}')
                self.changed.wait(min(left, 0.5))

    def matches(self, pattern: str, since: int = 0) -> List[re.Match]:
        """Output lines from line `since` on matching `pattern`."""
        regex = re.compile(pattern)
        with self.changed:
            return [m for m in map(regex.search, self.lines[since:]) if m]

    def json_result(self, timeout: float) -> dict:
        """Wait for the process to end and return its last output line as JSON."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f'{self.name} did not finish within {timeout:.0f} s:\n'
                               f'{self.tail()}') from None
        self._reader.join(5.0)
        if self.proc.returncode != 0 or not self.lines:
            raise RuntimeError(f'{self.name} exited with {self.proc.returncode}:\n{self.tail()}')
        return json.loads(self.lines[-1])

    def tail(self, lines: int = 20) -> str:
        """Return the last output lines."""
        return '\n'.join(self.lines[-lines:])

    def stop(self, timeout: float) -> None:
        """SIGINT, then SIGKILL after `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5.0)


def child_env(dds_profile: Optional[Path]) -> Dict[str, str]:
    """Environment of the children: ours, with `dds_profile` (or none), without the guard."""
    env = ros_child_env()
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if dds_profile is not None:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(dds_profile)
    return env
