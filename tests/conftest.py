"""Shared fixtures: private rclpy contexts, child processes that always end, signing keys."""
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

# A plain `pytest` (not tools/run_tests.sh) must not talk on domain 0 to other runs or robots:
# set at import, before any test's context or child process reads them. 1..101: higher IDs'
# ports can collide with Linux's ephemeral port range.
os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 101 + 1))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@contextlib.contextmanager
def _private_context():
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def ros_context():
    """A private, initialised rclpy Context, shut down after the test."""
    with _private_context() as context:
        yield context


@pytest.fixture(scope='module')
def module_ros_context():
    """Yield a private rclpy Context shared by the tests of a module (one node process for all)."""
    with _private_context() as context:
        yield context


def _remaining(deadline):
    """Seconds left until a time.monotonic() deadline; None (no limit) for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Output:
    """
    A child's output, drained from its pipe by a thread so that a chatty child never blocks.

    Read like the pipe it replaces (iteration, readline, read), each line once; readline and
    read also take a timeout.
    """

    def __init__(self, pipe):
        self._lines = queue.Queue()
        threading.Thread(target=self._drain, args=(pipe,), daemon=True).start()

    def _drain(self, pipe):
        for line in pipe:
            self._lines.put(line)
        self._lines.put('')   # end of output, as readline() gives it

    def readline(self, timeout=None) -> str:
        """Return the next line, '' at the end; raise queue.Empty after `timeout` seconds."""
        line = self._lines.get(timeout=timeout)
        if not line:
            self._lines.put('')   # the end stays visible to later reads
        return line

    def __iter__(self):
        return iter(self.readline, '')

    def read(self, timeout=None) -> str:
        """Return the rest of the output; raise queue.Empty if it has not ended in `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        lines = []
        while line := self.readline(_remaining(deadline)):
            lines.append(line)
        return ''.join(lines)


class _Child(subprocess.Popen):
    """A Python child process whose stdout (with stderr) is an _Output."""

    def __init__(self, args, cwd):
        super().__init__([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        self.stdout = _Output(self.stdout)

    def communicate(self, timeout=None):
        """Return (output, None) once the child has ended; Popen's would read the drained pipe."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            output = self.stdout.read(timeout)
        except queue.Empty:
            raise subprocess.TimeoutExpired(self.args, timeout) from None
        self.wait(_remaining(deadline))
        return output, None


@contextlib.contextmanager
def _children():
    children = []

    def start(args, cwd=None, wait_for_line=None, timeout=30.0):
        proc = _Child(args, cwd)
        children.append(proc)
        if wait_for_line is not None:
            # bounded even when the child prints nothing at all
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = proc.stdout.readline(_remaining(deadline))
                except queue.Empty:
                    raise TimeoutError(f'{args} did not print {wait_for_line!r}') from None
                if not line:
                    raise RuntimeError(f'{args} exited with {proc.wait()} before being ready')
                if wait_for_line in line:
                    break
        return proc

    try:
        yield start
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def spawn():
    """Start child processes with the test environment; they are stopped after the test."""
    with _children() as start:
        yield start


@pytest.fixture(scope='module')
def module_spawn():
    """Start child processes that serve every test of a module; stopped after the module."""
    with _children() as start:
        yield start


@pytest.fixture(scope='session')
def signing_keys(tmp_path_factory):
    """Make a key pair once per session; nodes under test trust its public key."""
    from softmaint_core.signing import generate_keypair
    return generate_keypair(tmp_path_factory.mktemp('signing_keys'), 'test')


@pytest.fixture(scope='session')
def sign(signing_keys):
    """Return a function that signs a model and its metadata with the session's key."""
    from softmaint_core.signing import load_private_key, sign_model
    private_key = load_private_key(signing_keys.private)
    return lambda path: sign_model(path, private_key)
