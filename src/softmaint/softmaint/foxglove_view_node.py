"""
Foxglove live view: the suite's streams on a Foxglove SDK WebSocket server.

Subscribes to the camera image, the tactile array, predictions, decisions and /diagnostics and
logs them on channels of a foxglove-sdk WebSocket server (ws://host:port) that the Foxglove app
opens ("Open connection"; layout: config/foxglove/softmaint_layout.json):

  camera/image_raw              foxglove.RawImage (the camera image as it is)
  tactile/heatmap               foxglove.RawImage (rgb8 heat map of the taxels)
  softmaint/prediction          JSON, mirrors MaintenancePrediction (urgency, uncertainty, ...)
  softmaint/decision            JSON, mirrors MaintenanceDecision
  softmaint/assistance_request  JSON, every decision that asks a human, while it asks
  /diagnostics                  JSON, mirrors DiagnosticArray (the Diagnostics panel reads it)

Channel names are the ROS topics' resolved names (namespace and remaps applied), as
foxglove_bridge names them on a distro; the payloads come from softmaint_core.live_view.
A message is converted only while a client subscribes to its channel. Off by default:
bringup starts it with foxglove:=true. The server listens on 127.0.0.1 unless `host` says
otherwise, so the robot's data are not exposed to its network by accident.
"""
import functools

from diagnostic_msgs.msg import DiagnosticArray
import foxglove
from foxglove.channels import RawImageChannel
from foxglove.messages import RawImage, Timestamp
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image
from softmaint_core import live_view, topics
from softmaint_core.image import ImageError
from softmaint_core.messages import header_stamp
from softmaint_core.window import InputError
from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction, TactileArray
from softmaint_ros.node_main import run_node
from softmaint_ros.qos import LATCHED

NODE_NAME = 'softmaint_foxglove_view'
# ROS source -> (message type, topic, QoS, the streams it feeds)
SOURCES = {
    'camera': (Image, topics.CAMERA, qos_profile_sensor_data, ('camera',)),
    'tactile': (TactileArray, topics.TACTILE, qos_profile_sensor_data, ('tactile',)),
    'prediction': (MaintenancePrediction, topics.PREDICTION, 10, ('prediction',)),
    'decision': (MaintenanceDecision, topics.DECISION, LATCHED, ('decision', 'assistance')),
    'diagnostics': (DiagnosticArray, topics.DIAGNOSTICS, 10, ('diagnostics',)),
}
STREAMS = tuple(live_view.channel_topics())
JSON_STREAMS = {'prediction': live_view.PREDICTION, 'decision': live_view.DECISION,
                'assistance': live_view.ASSISTANCE_REQUEST,
                'diagnostics': live_view.DIAGNOSTICS}


def timestamp(header) -> Timestamp:
    """Foxglove Timestamp of a std_msgs/Header's stamp; InputError when it is not a time."""
    header_stamp(header)        # a negative second overflowed foxglove's unsigned field
    return Timestamp(header.stamp.sec, header.stamp.nanosec)


class FoxgloveViewNode(Node):
    """Relays the suite's streams to a Foxglove WebSocket server."""

    def __init__(self):
        super().__init__(NODE_NAME)
        self._server = None   # until it starts, last in __init__ (destroy_node stops it)
        self._declare_parameters()
        streams = list(self.get_parameter('streams').value)
        unknown = sorted(set(streams) - set(STREAMS))
        if unknown or not streams:
            raise ValueError(f'parameter streams: {unknown or "empty"}; name one or more of '
                             f'{list(STREAMS)}')
        self._cell = self.get_parameter('tactile_cell').value
        # A context of its own: the server sees this node's channels only.
        self._foxglove = foxglove.Context()
        names = live_view.channel_topics(self.resolve_topic_name)
        self._channels = {stream: self._channel(stream, names[stream]) for stream in streams}
        self._live_view_subscriptions = [
            self.create_subscription(
                kind, topic, functools.partial(self._on_message, source), qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
            for source, (kind, topic, qos, fed) in SOURCES.items()
            if set(fed) & set(streams)]
        host = self.get_parameter('host').value
        self._server = foxglove.start_server(
            name=self.get_fully_qualified_name(), host=host,
            port=self.get_parameter('port').value, context=self._foxglove)
        self.get_logger().info(
            f'live view on ws://{host}:{self._server.port}, channels '
            f'{", ".join(names[stream] for stream in streams)}')

    def _declare_parameters(self) -> None:
        self.declare_parameter('host', '127.0.0.1', ParameterDescriptor(
            description='address the WebSocket server listens on; 0.0.0.0 = every interface '
                        "(exposes the robot's data to its network)", read_only=True))
        self.declare_parameter('port', 8765, ParameterDescriptor(
            description='WebSocket port; 0 = any free port (the log names it)', read_only=True,
            integer_range=[IntegerRange(from_value=0, to_value=65535, step=1)]))
        self.declare_parameter('streams', list(STREAMS), ParameterDescriptor(
            description=f'streams to show, of {list(STREAMS)}', read_only=True))
        self.declare_parameter('tactile_cell', 24, ParameterDescriptor(
            description='pixels per taxel (square) in the tactile heat map', read_only=True,
            integer_range=[IntegerRange(from_value=1, to_value=64, step=1)]))

    def _channel(self, stream: str, topic: str):
        if stream in JSON_STREAMS:
            return foxglove.Channel(topic, schema=JSON_STREAMS[stream].schema(),
                                    context=self._foxglove)
        return RawImageChannel(topic, context=self._foxglove)

    def _payloads(self, source: str, msg):
        """(stream, payload) pairs of one message."""
        if source == 'camera':
            yield 'camera', RawImage(timestamp=timestamp(msg.header),
                                     frame_id=msg.header.frame_id, **live_view.raw_image(msg))
        elif source == 'tactile':
            yield 'tactile', RawImage(timestamp=timestamp(msg.header),
                                      frame_id=msg.header.frame_id,
                                      **live_view.tactile_heatmap(msg, self._cell))
        elif source == 'decision':
            yield 'decision', live_view.DECISION.record(msg)
            request = live_view.assistance_request(msg)
            if request is not None:
                yield 'assistance', request
        else:
            yield source, JSON_STREAMS[source].record(msg)

    def _on_message(self, source: str, msg) -> None:
        watched = {stream for stream in SOURCES[source][3]
                   if stream in self._channels and self._channels[stream].has_sinks()}
        if not watched:
            return
        try:
            for stream, payload in self._payloads(source, msg):
                if stream in watched:
                    self._channels[stream].log(payload)
        except (ImageError, InputError) as err:
            self.get_logger().warning(f'{source} message not shown: {err}',
                                      throttle_duration_sec=5.0)

    def destroy_node(self):
        """Stop the WebSocket server, then the node."""
        if self._server is not None:
            self._server.stop()
        return super().destroy_node()


def main(args=None):
    """Run the live view until shutdown."""
    # RuntimeError: the SDK's FoxgloveError, e.g. when the port is taken
    return run_node(FoxgloveViewNode, NODE_NAME, args, fatal=(ValueError, RuntimeError),
                    describe=lambda err: f'cannot start the live view: {err}')


if __name__ == '__main__':
    raise SystemExit(main())
