"""
ONNX export of the student with checker, numerical parity and the metadata file beside it.

The graph follows the contract in softmaint_core.spec: inputs camera/tactile/proprio/
environment (normalised, zeros where unavailable) + mask [B, M]; outputs fatigue_logits
[B, K, 3], damage_logits [B, K, 5], urgency [B, K], reconstruction [B, K, M, E]; the batch
axis is dynamic. Parity with torch eager is checked with rtol 1e-3, atol 1e-5 on random inputs
under several masks (including single-modality and empty masks) before the metadata is written.
Given a private key, the model and its metadata are then signed (softmaint_core.signing): the
inference node refuses unsigned models unless told otherwise.
"""
import itertools
import json
from pathlib import Path
from typing import Dict, Optional, Tuple, Union
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from softmaint_core.metadata import check_onnx_io, ModelMetadata, sha256_file
from softmaint_core.spec import FIELD_SPEC, MASK_INPUT, MODALITIES, OUTPUTS
import torch

from .models import OnnxStudent, Student

RTOL, ATOL = 1e-3, 1e-5


class ParityError(AssertionError):
    """ONNX Runtime and torch disagree beyond the tolerance."""


def example_inputs(batch: int, seed: int = 0, masks: Optional[np.ndarray] = None):
    """Random normalised inputs in contract order (numpy float32) and a mask [B, M]."""
    rng = np.random.default_rng(seed)
    arrays = {m.name: rng.standard_normal((batch,) + m.shape).astype(np.float32)
              for m in FIELD_SPEC.modalities}
    if masks is None:
        masks = (rng.random((batch, len(MODALITIES))) < 0.7)
    masks = np.asarray(masks, dtype=np.float32)
    for i, name in enumerate(MODALITIES):
        arrays[name][masks[:, i] == 0] = 0.0
    arrays[MASK_INPUT] = masks
    return arrays


def all_masks() -> np.ndarray:
    """All 16 availability masks (including the empty one) [16, M]."""
    return np.array(list(itertools.product([0, 1], repeat=len(MODALITIES))), dtype=np.float32)


def export_onnx(student: Student, path: Path, opset: int = 17) -> Path:
    """Export with the legacy TorchScript exporter (dynamo=False), then onnx.checker."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = OnnxStudent(student).eval()
    sample = example_inputs(2)
    args = tuple(torch.from_numpy(sample[n]) for n in MODALITIES + (MASK_INPUT,))
    names = list(MODALITIES) + [MASK_INPUT]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(wrapper, args, str(path), input_names=names,
                          output_names=list(OUTPUTS), opset_version=opset, dynamo=False,
                          dynamic_axes={n: {0: 'batch'} for n in names + list(OUTPUTS)})
    onnx.checker.check_model(onnx.load(str(path)))
    return path


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """Open an onnxruntime CPU session with explicit thread counts."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


@torch.no_grad()
def torch_outputs(student: Student, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Contract outputs of the torch student for numpy feeds."""
    wrapper = OnnxStudent(student).eval()
    outs = wrapper(*(torch.from_numpy(feeds[n]) for n in MODALITIES + (MASK_INPUT,)))
    return {name: o.numpy() for name, o in zip(OUTPUTS, outs)}


def check_parity(student: Student, path: Path, rtol: float = RTOL, atol: float = ATOL) -> float:
    """
    Compare torch and onnxruntime on every mask and random inputs; raise ParityError.

    Returns the largest absolute difference seen.
    """
    sess = session(path)
    worst = 0.0
    cases = [example_inputs(16, seed=1, masks=all_masks()), example_inputs(1, seed=2),
             example_inputs(5, seed=3)]
    for feeds in cases:
        expected = torch_outputs(student, feeds)
        got = dict(zip(OUTPUTS, sess.run(list(OUTPUTS), feeds)))
        for name in OUTPUTS:
            if not np.all(np.isfinite(got[name])):
                raise ParityError(f'{name}: onnxruntime output holds NaN/inf')
            try:
                np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=atol)
            except AssertionError as err:
                raise ParityError(f'{path.name}: output {name} differs from torch beyond '
                                  f'rtol {rtol:g} / atol {atol:g}: {err}; the graph does not '
                                  'compute what the checkpoint does: do not deploy it, try '
                                  'another export.opset') from err
            worst = max(worst, float(np.abs(got[name] - expected[name]).max()))
    return worst


def threshold(value) -> Union[float, Tuple[float, ...]]:
    """Return a conformal q-hat as metadata holds it: a float, or a tuple of one per class."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(float(v) for v in value)
    return float(value)


def write_metadata(path: Path, model_id: str, stats, members: int, calibration: Dict,
                   metrics: Dict[str, float], card_sha256: str, config: dict,
                   calibration_card_sha256: str = '') -> ModelMetadata:
    """Write <stem>.json beside the ONNX file (SHA-256 of the file inside) and return it."""
    path = Path(path)
    spec = FIELD_SPEC.with_normalisation(stats).with_min_snr(
        calibration.get('camera_min_snr', 0.0))
    meta = ModelMetadata(
        model_id=model_id, sha256=sha256_file(path), input_spec=spec, members=members,
        temperature_fatigue=float(calibration['temperature_fatigue']),
        temperature_damage=float(calibration['temperature_damage']),
        conformal_alpha=float(calibration['conformal_alpha']),
        conformal_fatigue=threshold(calibration['conformal_fatigue']),
        conformal_damage=threshold(calibration['conformal_damage']),
        damage_miss_alpha=calibration.get('damage_miss_alpha'),
        damage_miss_threshold=calibration.get('damage_miss_threshold'),
        metrics={k: float(v) for k, v in metrics.items()},
        dataset_card_sha256=card_sha256, calibration_card_sha256=calibration_card_sha256,
        training_config=json.loads(json.dumps(config)))
    meta.validate()
    path.with_suffix('.json').write_text(meta.to_json() + '\n')
    sess = session(path)
    check_onnx_io([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()],
                  meta)
    return meta
