"""Shared fixtures: a private rclpy context per test, child processes that always end, keys."""
import os
import subprocess
import sys
import time

import pytest


@pytest.fixture
def ros_context():
    """A private, initialised rclpy Context, shut down after the test."""
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ.get('ROS_DOMAIN_ID', '0')))
    yield context
    context.try_shutdown()


@pytest.fixture
def spawn():
    """Start child processes with the test environment; they are stopped after the test."""
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

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
