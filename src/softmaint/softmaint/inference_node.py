"""
Student inference node: runs the ONNX student on every sensor window.

Loads the model given by `model_path` (its Ed25519 signature against `model_public_key`, then
SHA-256, input spec and a test inference checked before use), subscribes to softmaint/window
(SensorWindow), runs onnxruntime and publishes a calibrated MaintenancePrediction on
softmaint/prediction. Windows built for another input spec (spec_id), malformed, repeated, out
of order or from the future (softmaint_core.inputs.window_feeds), or that the model cannot
assess (outputs not finite), are counted by reason and dropped with a throttled error. The
softmaint/reload_model service swaps in a new model only after it passed the same checks; a
refused model leaves the serving one untouched and is reported on /diagnostics (WARN) until a
model is swapped in. /diagnostics reports the model, its signer, latency percentiles, dropped
windows and refused reloads by reason (`rejected.window.<reason>`,
`rejected.reload_model.<reason>`).
"""
from collections import deque
from pathlib import Path
from typing import Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from softmaint_core import topics
from softmaint_core.inputs import (brief, model_path, RejectCounts, Rejected, RELOAD_REASONS,
                                   window_feeds, WINDOW_REASONS, WindowStream)
from softmaint_core.metrics import percentiles
from softmaint_core.postprocess import Prediction
from softmaint_core.signing import (DEVELOPMENT_KEY_ID, key_id, load_public_key,
                                    SignatureError)
from softmaint_core.student import ModelError, StudentModel
from softmaint_interfaces.msg import MaintenancePrediction, ReconstructedModality, SensorWindow
from softmaint_interfaces.srv import ReloadModel
from softmaint_ros.diagnostics import declare_diagnostics_parameters, hardware_id, key_values
from softmaint_ros.node_main import run_node

from .bringup import model_for, share_dir

NODE_NAME = 'softmaint_inference'
# Recent windows kept for the latency percentiles.
LATENCY_SAMPLES = 1000


def default_public_key() -> Path:
    """Public key installed with the package: the development key (docs/deployment.md)."""
    return share_dir() / 'config' / 'keys' / 'softmaint_dev.pub.pem'


def prediction_msg(window: SensorWindow, model: StudentModel, prediction: Prediction,
                   mask: Sequence[bool], inference_ms: float) -> MaintenancePrediction:
    """Fill a MaintenancePrediction (all but latency_ms) for one window."""
    meta, p = model.meta, prediction
    msg = MaintenancePrediction(header=window.header, window_sequence=window.sequence)
    msg.fatigue_classes = list(meta.fatigue_classes)
    msg.fatigue_probs = p.fatigue_probs.tolist()
    msg.fatigue_set = p.fatigue_set
    msg.damage_classes = list(meta.damage_classes)
    msg.damage_probs = p.damage_probs.tolist()
    msg.damage_set = p.damage_set
    msg.conformal_coverage = 1.0 - meta.conformal_alpha
    msg.urgency, msg.urgency_std = p.urgency, p.urgency_std
    msg.fatigue_entropy, msg.damage_entropy = p.fatigue_entropy, p.damage_entropy
    msg.fatigue_disagreement = p.fatigue_disagreement
    msg.damage_disagreement = p.damage_disagreement
    msg.uncertainty = p.uncertainty
    msg.input_modalities = [n for n, ok in zip(model.spec.names, mask) if ok]
    msg.reconstructed = [
        ReconstructedModality(name=name, embedding=vector.tolist(),
                              confidence=p.reconstruction_confidence[name])
        for name, vector in p.reconstructed.items()]
    msg.model_id, msg.model_sha256 = meta.model_id, meta.sha256
    msg.inference_ms = inference_ms
    return msg


class InferenceNode(Node):
    """Publishes the student's prediction for every sensor window."""

    def __init__(self):
        super().__init__(NODE_NAME)
        self.declare_parameter('model_path', str(model_for()), ParameterDescriptor(
            description='student ONNX file; its metadata JSON sits beside it. Change the model '
                        f'at run time with the {topics.RELOAD_MODEL} service', read_only=True))
        # Read-only: whoever may set parameters on the ROS graph must not switch the check off.
        self.declare_parameter('model_public_key', str(default_public_key()), ParameterDescriptor(
            description='Ed25519 public key (PEM) that models must be signed with; the '
                        'default is the development key, a deployment sets its own',
            read_only=True))
        self.declare_parameter('require_signed_model', True, ParameterDescriptor(
            description='refuse models without a signature file; a signature that does not '
                        'verify is refused either way', read_only=True))
        self.declare_parameter('threads', 1, ParameterDescriptor(
            description='onnxruntime intra-op threads', read_only=True,
            integer_range=[IntegerRange(from_value=1, to_value=64, step=1)]))
        self.declare_parameter('allow_spec_change', False, ParameterDescriptor(
            description='accept a reloaded model whose input spec differs from the serving '
                        'one (only when ingestion is switched to the new spec as well)'))
        self.declare_parameter('warn_latency_ms', 50.0, ParameterDescriptor(
            description='diagnostics warn when the p99 window-to-prediction latency exceeds '
                        'this [ms]',
            floating_point_range=[FloatingPointRange(from_value=1.0, to_value=60000.0)]))
        declare_diagnostics_parameters(self)

        self._threads = self.get_parameter('threads').value
        key_path = self.get_parameter('model_public_key').value
        self._public_key = load_public_key(key_path)
        self._key_id = key_id(self._public_key)
        self._allow_unsigned = not self.get_parameter('require_signed_model').value
        self.get_logger().info(f'model signatures are checked against key {self._key_id} '
                               f'({key_path})')
        if self._key_id == DEVELOPMENT_KEY_ID:
            self.get_logger().warning(
                'trusting the DEVELOPMENT signing key, whose private half is public: set '
                "model_public_key to the deployment's own key (docs/deployment.md)")
        self._model = self._load(self.get_parameter('model_path').value)
        self._last_refusal = ''
        self._latency_ms = deque(maxlen=LATENCY_SAMPLES)
        self._inference_ms = deque(maxlen=LATENCY_SAMPLES)
        self._counts = {'windows': 0, 'predictions': 0, 'dropped_spec_mismatch': 0,
                        'dropped_malformed': 0, 'skipped_no_input': 0, 'lost_in_transit': 0,
                        'reloads': 0,
                        'reloads_refused': 0}
        self._rejects = RejectCounts({'window': WINDOW_REASONS,
                                      'reload_model': RELOAD_REASONS})
        self._stream = WindowStream()
        self._dropped_reported = 0

        windows_group = MutuallyExclusiveCallbackGroup()
        self._publisher = self.create_publisher(MaintenancePrediction, topics.PREDICTION, 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(
            SensorWindow, topics.WINDOW, self._on_window, 10, callback_group=windows_group,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self.create_service(ReloadModel, topics.RELOAD_MODEL, self._on_reload,
                            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(self.get_parameter('diagnostics_period').value,
                          self._publish_diagnostics, callback_group=windows_group)
        self.get_logger().info(f'serving {self._model.describe()} from {self._model.path}, '
                               f'input spec {self._model.spec.spec_id}')

    def _load(self, path: str) -> StudentModel:
        """Load and check a model (signature first); warn when it is accepted unsigned."""
        model = StudentModel(path, self._threads, self._public_key, self._allow_unsigned)
        if model.signed_by is None:
            self.get_logger().warning(f'{model.path} is unsigned, accepted because '
                                      'require_signed_model is false')
        return model

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_window(self, window: SensorWindow) -> None:
        self._counts['windows'] += 1
        model = self._model                   # one model per window, even during a reload
        try:
            stamp, feeds, mask = window_feeds(window, model.spec, self._stream, self._now())
            # nothing sensed: a prediction would be the model's prior, not news
            predicted = model.predict(feeds, mask) if any(mask) else None
        except (Rejected, ModelError) as err:
            self._stream.rejected()
            self._rejects.count('window', err.reason)
            self._drop('dropped_spec_mismatch' if err.reason == 'spec_mismatch'
                       else 'dropped_malformed', f'window {window.sequence}: {err}')
            return
        self._counts['lost_in_transit'] += self._stream.accept_window(stamp, window.sequence,
                                                                      model.spec.hop)
        if predicted is None:
            self._counts['skipped_no_input'] += 1
            self.get_logger().warning(f'window {window.sequence}: no modality available, no '
                                      'prediction', throttle_duration_sec=5.0)
            return
        prediction, inference_ms = predicted
        msg = prediction_msg(window, model, prediction, mask, inference_ms)
        msg.latency_ms = (self.get_clock().now() - Time.from_msg(window.header.stamp)
                          ).nanoseconds / 1e6
        self._publisher.publish(msg)
        self._counts['predictions'] += 1
        self._latency_ms.append(msg.latency_ms)
        self._inference_ms.append(inference_ms)

    def _drop(self, counter: str, message: str) -> None:
        self._counts[counter] += 1
        self.get_logger().error(f'dropped {message} ({self._counts[counter]} so far)',
                                throttle_duration_sec=5.0)

    def _on_reload(self, request: ReloadModel.Request, response: ReloadModel.Response):
        serving = self._model
        response.previous_model_id = serving.meta.model_id
        try:
            candidate = self._load(str(model_path(request.model_path)))
            new_spec, old_spec = candidate.spec.spec_id, serving.spec.spec_id
            if new_spec != old_spec and not self.get_parameter('allow_spec_change').value:
                raise ModelError(f'its input spec {new_spec} differs from the serving spec '
                                 f'{old_spec} that windows are built for (set '
                                 'allow_spec_change once ingestion uses the new spec)',
                                 'spec_change')
        except (Rejected, ModelError) as err:
            self._counts['reloads_refused'] += 1
            self._rejects.count('reload_model', err.reason)
            response.success, response.model_id = False, serving.meta.model_id
            response.message = (f'refused {brief(request.model_path)!r}: {err}; still serving '
                                f'{serving.describe()}')
            self._last_refusal = response.message
            self.get_logger().error(response.message)
            return response
        self._model = candidate               # atomic: the next window uses the new model
        self._last_refusal = ''
        self._counts['reloads'] += 1
        response.success, response.model_id = True, candidate.meta.model_id
        response.message = f'now serving {candidate.describe()}, replacing {serving.describe()}'
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        model = self._model
        latency = percentiles(self._latency_ms)
        inference = percentiles(self._inference_ms)
        dropped = self._counts['dropped_spec_mismatch'] + self._counts['dropped_malformed']
        status = DiagnosticStatus(name=f'{NODE_NAME}: model', hardware_id=hardware_id(self))
        if dropped > self._dropped_reported:
            status.level = DiagnosticStatus.WARN
            status.message = f'{dropped - self._dropped_reported} windows dropped'
            self._dropped_reported = dropped
        elif self._last_refusal:
            status.level, status.message = DiagnosticStatus.WARN, self._last_refusal
        elif latency['p99'] > self.get_parameter('warn_latency_ms').value:
            status.level = DiagnosticStatus.WARN
            status.message = f"p99 latency {latency['p99']:.1f} ms"
        else:
            status.level, status.message = DiagnosticStatus.OK, 'serving'
        values = {'model_id': model.meta.model_id, 'model_sha256': model.meta.sha256,
                  'spec_id': model.spec.spec_id, 'model_path': str(model.path),
                  'model_signed_by': model.signed_by or 'unsigned',
                  'trusted_key_id': self._key_id, 'last_refused_reload': self._last_refusal,
                  **{key: str(count) for key, count in self._counts.items()},
                  'dropped_windows': str(dropped), **self._rejects.values()}
        for name, stats in (('latency_ms', latency), ('inference_ms', inference)):
            for label in ('p50', 'p95', 'p99'):
                values[f'{name}_{label}'] = f'{stats[label]:.3f}'
        status.values = key_values(values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


def main(args=None):
    """Run the node until Ctrl-C or SIGTERM; return 1 when the model cannot serve."""
    return run_node(InferenceNode, NODE_NAME, args,
                    make_executor=lambda: MultiThreadedExecutor(num_threads=2),
                    fatal=(ModelError, SignatureError),
                    describe=lambda err: f'cannot serve the model: {err}')


if __name__ == '__main__':
    raise SystemExit(main())
