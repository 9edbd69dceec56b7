"""Shared fixtures: private rclpy contexts, child processes that always end, signing keys."""
import contextlib
import os
import subprocess
import sys
import time

import pytest


@contextlib.contextmanager
def _private_context():
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ.get('ROS_DOMAIN_ID', '0')))
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


@contextlib.contextmanager
def _children():
    children = []

    def start(args, cwd=None, wait_for_line=None, timeout=30.0):
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        children.append(proc)
        if wait_for_line is not None:
            deadline = time.monotonic() + timeout
            for line in proc.stdout:
                if wait_for_line in line:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{args} did not print {wait_for_line!r}')
            else:
                raise RuntimeError(f'{args} exited with {proc.wait()} before being ready')
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
