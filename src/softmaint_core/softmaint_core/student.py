"""
A verified student model: onnxruntime session, metadata, checks and calibrated prediction.

ROS-free, so the inference node, offline bag evaluation and its benchmark serve the very same
object: given a public key, the model's signature is checked first (softmaint_core.signing);
then the SHA-256 and input spec of the metadata, the graph's inputs and outputs must fit them,
and a test inference with all and with one fewer modality must give finite outputs of the
right shapes before the model may serve.
"""
from pathlib import Path
import time
from typing import Dict, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
import numpy as np
import onnxruntime as ort

from .metadata import (check_onnx_io, MetadataError, ModelMetadata, read_model_files,
                       verified_metadata)
from .postprocess import postprocess, Prediction
from .signing import SignatureError, UnsignedModelError, verify_model
from .spec import InputSpec, MASK_INPUT, OUTPUTS


class ModelError(ValueError):
    """
    A model that must not serve: missing, corrupt, or not fitting its metadata.

    `reason` names the check that failed (inputs.RELOAD_REASONS), or 'non_finite_output' for
    a window the model cannot assess.
    """

    def __init__(self, message: str, reason: str = 'metadata'):
        super().__init__(message)
        self.reason = reason


class StudentModel:
    """A verified student: onnxruntime session and metadata, ROS-free."""

    def __init__(self, path, threads: int = 1, public_key: Optional[Ed25519PublicKey] = None,
                 allow_unsigned: bool = False):
        """
        Load and check a model; raise ModelError saying why it cannot serve.

        With a public key the model must carry a valid signature of that key (an unsigned one
        passes only with allow_unsigned); without one, signatures are not looked at (offline
        tools reading their own models). `signed_by` is the key id, or None.
        """
        try:
            self.path = Path(path).expanduser()
        except RuntimeError as err:     # '~user/...' of a user this machine does not have
            raise ModelError(f'cannot read {path}: {err}', 'io') from err
        self.signed_by: Optional[str] = None
        try:
            model_bytes = self._verify(public_key, allow_unsigned)
        except OSError as err:      # unreadable: permissions, a directory, a name too long
            raise ModelError(f'cannot read {self.path}: {err.strerror}', 'io') from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(model_bytes, options,
                                                providers=['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime raises its own types for every kind of bad file
            raise ModelError(f'onnxruntime cannot load {self.path.name}: {err}', 'onnx') from err
        try:
            check_onnx_io([i.name for i in self.session.get_inputs()],
                          [o.name for o in self.session.get_outputs()], self.meta)
        except MetadataError as err:
            raise ModelError(str(err), 'graph') from err
        self._check_input_shapes()
        self._test_inference()

    def _verify(self, public_key: Optional[Ed25519PublicKey], allow_unsigned: bool) -> bytes:
        """
        Read the model and its metadata once, check them, return the model's bytes.

        The signature (given a key), the metadata and its SHA-256 are checked on the bytes read
        here, and the session runs those bytes: a file swapped after the check is never used.
        """
        missing = None
        try:
            contents = read_model_files(self.path)
        except MetadataError as err:      # the signature check below names it, given a key
            contents, missing = None, err
        if public_key is not None:
            self._check_signature(public_key, allow_unsigned, contents)
        if contents is None:
            raise ModelError(str(missing)) from missing
        try:
            self.meta: ModelMetadata = verified_metadata(self.path.name, *contents)
        except MetadataError as err:
            raise ModelError(str(err)) from err
        return contents[0]

    def _check_signature(self, public_key: Ed25519PublicKey, allow_unsigned: bool,
                         contents: Optional[Tuple[bytes, bytes]]) -> None:
        try:
            self.signed_by = verify_model(self.path, public_key, contents)
        except UnsignedModelError as err:
            if not allow_unsigned:
                raise ModelError(str(err), 'unsigned') from err
        except SignatureError as err:
            raise ModelError(str(err), 'signature') from err

    @property
    def spec(self) -> InputSpec:
        """Input spec the windows must be built for."""
        return self.meta.input_spec

    def describe(self) -> str:
        """Model id with a short SHA-256."""
        return f'{self.meta.model_id} (sha256 {self.meta.sha256[:12]})'

    def _check_input_shapes(self) -> None:
        """Every static input dimension (after the batch) must match the metadata's spec."""
        expected = {m.name: m.shape for m in self.spec.modalities}
        expected[MASK_INPUT] = (len(self.spec.modalities),)
        for graph_input in self.session.get_inputs():
            dims = tuple(graph_input.shape[1:])
            want = expected[graph_input.name]
            fits = len(dims) == len(want) and all(
                not isinstance(d, int) or d == w for d, w in zip(dims, want))
            if not fits:
                raise ModelError(f'input {graph_input.name} of the graph has shape '
                                 f'{list(dims)} per window but the metadata spec says '
                                 f'{list(want)}', 'graph')

    def _test_inference(self) -> None:
        """Run zero windows with all and with one fewer modality; check shapes and values."""
        names = self.spec.names
        k, e = self.meta.members, self.spec.embedding
        expected = {'fatigue_logits': (1, k, len(self.meta.fatigue_classes)),
                    'damage_logits': (1, k, len(self.meta.damage_classes)),
                    'urgency': (1, k), 'reconstruction': (1, k, len(names), e)}
        for mask in ([True] * len(names), [False] + [True] * (len(names) - 1)):
            try:        # a spec's shapes too large to allocate refuse the model as well
                feeds = {m.name: np.zeros((1,) + m.shape, np.float32)
                         for m in self.spec.modalities}
                outputs, _ = self.run(feeds, mask)
            except Exception as err:  # any runtime failure of the graph refuses the model
                raise ModelError(f'test inference failed: {err}', 'test_inference') from err
            for name, shape in expected.items():
                if outputs[name].shape != shape:
                    raise ModelError(f'test inference: output {name} has shape '
                                     f'{list(outputs[name].shape)}, expected {list(shape)}',
                                     'test_inference')
                if not np.all(np.isfinite(outputs[name])):
                    raise ModelError(f'test inference: output {name} is not finite',
                                     'test_inference')
            postprocess(outputs, mask, self.meta)

    def run(self, feeds: Dict[str, np.ndarray], mask: Sequence[bool]
            ) -> Tuple[Dict[str, np.ndarray], float]:
        """Raw outputs for one window and the onnxruntime time [ms]."""
        feeds = {**feeds, MASK_INPUT: np.asarray([mask], dtype=np.float32)}
        start = time.perf_counter()
        outputs = self.session.run(list(OUTPUTS), feeds)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return dict(zip(OUTPUTS, outputs)), elapsed_ms

    def predict(self, feeds: Dict[str, np.ndarray], mask: Sequence[bool]
                ) -> Tuple[Prediction, float]:
        """
        Calibrated prediction for one window and the onnxruntime time [ms].

        Raises ModelError('non_finite_output') when the graph's outputs are not finite: a
        prediction of NaN must not reach the agent.
        """
        outputs, elapsed_ms = self.run(feeds, mask)
        broken = [name for name, value in outputs.items() if not np.all(np.isfinite(value))]
        if broken:
            raise ModelError(f'outputs {broken} are not finite for this window',
                             'non_finite_output')
        return postprocess(outputs, mask, self.meta), elapsed_ms
