"""The committed models (default and per profile) are signed with the development key, load in
onnxruntime with their metadata and give valid output; each is rebuilt by its training config."""
import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from softmaint_core.metadata import check_onnx_io, load_verified
from softmaint_core.postprocess import postprocess
from softmaint_core.signing import load_public_key, verify_model
from softmaint_core.spec import FIELD_SPEC, MODALITIES, OUTPUTS

REPO = Path(__file__).resolve().parents[2]
# model -> the training config that reproduces it (a profile's: config/train/<profile>.yaml)
CONFIGS = {REPO / 'models' / 'student.onnx': REPO / 'config' / 'train' / 'field-v25.yaml'}
CONFIGS.update({path: REPO / 'config' / 'train' / f'{path.parent.name}.yaml'
                for path in sorted((REPO / 'models' / 'profiles').glob('*/student.onnx'))})


@pytest.fixture(scope='module', params=sorted(CONFIGS), ids=lambda p: str(p.relative_to(REPO)))
def committed(request):
    model = request.param
    assert model.is_file(), f'{model} is missing: run softmaint-train reproduce'
    # robots trust the installed development key by default (docs/deployment.md)
    verify_model(model, load_public_key(REPO / 'config' / 'keys' / 'softmaint_dev.pub.pem'))
    meta = load_verified(model)                     # checks the SHA-256 too
    sess = ort.InferenceSession(str(model), providers=['CPUExecutionProvider'])
    check_onnx_io([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()],
                  meta)
    return model, meta, sess


def test_the_space_profile_ships_its_own_student():
    # docs/profiles.md §2: the default student misreads embrittled space arms
    assert REPO / 'models' / 'profiles' / 'space' / 'student.onnx' in CONFIGS


def test_model_is_small_and_metadata_complete(committed):
    model, meta, _ = committed
    assert model.stat().st_size < 5_000_000
    assert meta.members >= 3
    floor = meta.input_spec.modality('camera').min_snr
    assert 0.5 < floor < 3.0          # field training windows read ~1-10 (docs/onboard.md)
    assert meta.input_spec.spec_id == FIELD_SPEC.with_normalisation({
        m.name: (m.mean, m.std) for m in meta.input_spec.modalities}).with_min_snr(floor).spec_id
    for m in meta.input_spec.modalities:
        assert len(m.mean) == m.channels and all(s > 0 for s in m.std)
    assert meta.conformal_alpha == pytest.approx(0.1)
    for thresholds in (meta.conformal_damage, meta.conformal_fatigue):   # marginal or per class
        assert all(0 < q <= 1 for q in np.atleast_1d(thresholds))
    assert 'test.damage.macro_f1' in meta.metrics and 'parity_max_abs_diff' in meta.metrics
    assert len(meta.dataset_card_sha256) == 64
    assert meta.training_config['student']['members'] == meta.members


def test_every_mask_gives_a_valid_calibrated_prediction(committed):
    _, meta, sess = committed
    rng = np.random.default_rng(0)
    for mask in itertools.product([False, True], repeat=len(MODALITIES)):
        if not any(mask):
            continue
        feeds = {m.name: rng.standard_normal((2,) + m.shape).astype(np.float32)
                 * float(ok) for m, ok in zip(meta.input_spec.modalities, mask)}
        feeds['mask'] = np.tile(np.asarray(mask, np.float32), (2, 1))
        outputs = dict(zip(OUTPUTS, sess.run(list(OUTPUTS), feeds)))
        assert outputs['damage_logits'].shape == (2, meta.members, 5)
        pred = postprocess(outputs, mask, meta)
        assert pred.damage_probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert pred.fatigue_probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= pred.urgency <= 1.0 and 0.0 <= pred.uncertainty <= 1.0
        assert len(pred.damage_set) >= 1 and len(pred.fatigue_set) >= 1
        assert set(pred.reconstructed) == {n for n, ok in zip(MODALITIES, mask) if not ok}
        assert all(v.shape == (meta.input_spec.embedding,) for v in pred.reconstructed.values())


def test_committed_checkpoint_rebuilds_the_committed_graph(committed):
    # the torch checkpoint beside the ONNX file must still load with today's code (configs of
    # older models lack newer switches, whose defaults are the old behaviour) and give the
    # same outputs as the graph
    from softmaint_train.export import check_parity
    from softmaint_train.checkpoints import load_checkpoint
    model, _, _ = committed
    student, ckpt = load_checkpoint(model.with_suffix('.pt'))
    assert ckpt['kind'] == 'student'
    assert check_parity(student, model) < 1e-4


def test_each_model_was_trained_with_the_config_that_reproduces_it(committed):
    """
    Its config file equals the training config in its metadata and exports to its path.

    So `softmaint-train reproduce --config <its config>` uses its settings; that this
    rebuilds the same model is not checked here.
    """
    from dataclasses import asdict

    from softmaint_train.config import config_from_dict, load_config
    model, meta, _ = committed
    assert asdict(load_config(CONFIGS[model])) == asdict(config_from_dict(meta.training_config))
    assert load_config(CONFIGS[model]).export.out == str(model.relative_to(REPO))


@pytest.mark.parametrize('name', ['default', *sorted(p.stem for p in
                                                     (REPO / 'config/profiles').glob('*.yaml'))])
def test_each_profiles_student_card_carries_its_decision_figures(name):
    # written by python -m softmaint_sim.profile_eval ... --own-students --card (docs/profiles.md)
    from softmaint_core.profiles import student_of
    from softmaint_sim.profile_eval import CARD_FIGURES
    metrics = load_verified(student_of(name, REPO / 'models')).metrics
    for figure in CARD_FIGURES:
        key = f'profile.{name}.{figure.removeprefix("decision.")}'
        assert key in metrics, f'{key} missing: rerun the profile evaluation with --card'
    assert metrics[f'profile.{name}.episodes'] >= 1000
