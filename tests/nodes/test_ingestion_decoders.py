"""Image decoding in the ingestion node: cv_bridge only when it matches the numpy path exactly."""
import sys
import types

import numpy as np
import pytest


def _has_cv_bridge():
    try:
        import cv_bridge  # noqa: F401
    except ImportError:
        return False
    return True


def _images():
    from sensor_msgs.msg import Image
    from softmaint.ingestion_node import _probe_images
    from softmaint_core.image import array_to_image
    yield from _probe_images()
    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3))
    step, data = array_to_image(frame, 'bgr8', padding=8)
    yield Image(height=480, width=640, encoding='bgr8', step=step, data=data)


def test_cv_bridge_is_used_only_when_it_gives_the_numpy_results():
    from softmaint.ingestion_node import cv_bridge_decoder
    from softmaint_core.image import image_msg_to_rgb
    decoder = cv_bridge_decoder()
    if not _has_cv_bridge():
        assert decoder is None   # this machine: the numpy path
        return
    assert decoder is not None, 'cv_bridge is installed but converts differently'
    for msg in _images():
        np.testing.assert_array_equal(decoder(msg), image_msg_to_rgb(msg))


def test_a_cv_bridge_that_agrees_is_used(monkeypatch):
    # without cv_bridge on this machine, the test above only sees the numpy path
    from softmaint.ingestion_node import cv_bridge_decoder
    from softmaint_core.image import image_msg_to_rgb, image_to_array

    class Agreeing:   # converts like cv_bridge: native byte order, mono images without channels
        calls = 0

        def imgmsg_to_cv2(self, msg, desired_encoding):
            Agreeing.calls += 1
            image = image_to_array(msg.encoding, msg.height, msg.width, msg.step,
                                   bool(msg.is_bigendian), msg.data)
            return image[:, :, 0] if image.shape[2] == 1 else image

    module = types.ModuleType('cv_bridge')
    module.CvBridge = Agreeing
    monkeypatch.setitem(sys.modules, 'cv_bridge', module)
    decoder = cv_bridge_decoder()
    assert decoder is not None
    for msg in _images():
        calls = Agreeing.calls
        np.testing.assert_array_equal(decoder(msg), image_msg_to_rgb(msg))
        assert Agreeing.calls == calls + 1, 'the decoder did not go through cv_bridge'


def test_a_cv_bridge_that_disagrees_or_fails_is_not_used(monkeypatch):
    from softmaint.ingestion_node import cv_bridge_decoder

    class SwappedChannels:   # returns pixels, but in the wrong channel order
        def imgmsg_to_cv2(self, msg, desired_encoding):
            from softmaint_core.image import image_to_array
            image = image_to_array(msg.encoding, msg.height, msg.width, msg.step,
                                   bool(msg.is_bigendian), msg.data)
            return image[:, :, ::-1] if image.shape[2] == 3 else image

    class Broken:   # like the PyPI ROS 1 port under numpy 2
        def imgmsg_to_cv2(self, msg, desired_encoding):
            raise AttributeError("'numpy.ndarray' object has no attribute 'tostring'")

    for bridge in (SwappedChannels, Broken):
        module = types.ModuleType('cv_bridge')
        module.CvBridge = bridge
        monkeypatch.setitem(sys.modules, 'cv_bridge', module)
        assert cv_bridge_decoder() is None, bridge.__name__


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8', 'mono16', '32FC1'])
def test_probe_images_cover_every_encoding_and_byte_order(encoding):
    from softmaint.ingestion_node import _probe_images
    probes = [m for m in _probe_images() if m.encoding == encoding]
    assert sorted(m.is_bigendian for m in probes) == [False, True]
    assert all(m.step > m.width for m in probes)   # padded rows
