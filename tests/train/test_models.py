"""Models: shapes, any availability mask without NaN, masked inputs really ignored."""
import itertools

import pytest
from softmaint_core.spec import FIELD_SPEC, MODALITIES, TEACHER_SPEC
from softmaint_train.config import ModelConfig
from softmaint_train.models import (count_parameters, FrameCNN, shapes_from_spec, StepMLP,
                                    Student, Teacher, TemporalConv)
import torch

MASKS = list(itertools.product([0.0, 1.0], repeat=len(MODALITIES)))


def random_inputs(spec, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {m.name: torch.randn((batch,) + m.shape, generator=gen) for m in spec.modalities}


@pytest.fixture(scope='module')
def student():
    torch.manual_seed(0)
    return Student(shapes_from_spec(FIELD_SPEC), ModelConfig(), members=3, teacher_dim=48).eval()


def test_student_outputs_follow_the_contract(student):
    out = student(random_inputs(FIELD_SPEC, 4), torch.ones(4, 4))
    assert out['fatigue'].shape == (4, 3, 3)
    assert out['damage'].shape == (4, 3, 5)
    assert out['urgency'].shape == (4, 3)
    assert out['reconstruction'].shape == (4, 3, 4, FIELD_SPEC.embedding)
    assert ((out['urgency'] >= 0) & (out['urgency'] <= 1)).all()
    assert 'projection' not in out  # training-only heads are not run in eval mode


def test_every_mask_including_empty_is_finite(student):
    mask = torch.tensor(MASKS)                      # all 16 subsets, one per row
    inputs = random_inputs(FIELD_SPEC, len(MASKS))
    for i, name in enumerate(MODALITIES):
        inputs[name][mask[:, i] == 0] = 0.0
    out = student(inputs, mask)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key


def test_unavailable_modalities_do_not_change_the_prediction(student):
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    a = random_inputs(FIELD_SPEC, 1, seed=1)
    b = {k: v.clone() for k, v in a.items()}
    b['tactile'] = 100 * torch.randn_like(b['tactile'])      # garbage in a missing modality
    b['environment'] = torch.full_like(b['environment'], 1e6)
    out_a, out_b = student(a, mask), student(b, mask)
    for key in ('fatigue', 'damage', 'urgency', 'reconstruction'):
        torch.testing.assert_close(out_a[key], out_b[key], rtol=1e-5, atol=1e-6)
    # while an available modality does change it
    b['camera'] = b['camera'] + torch.randn_like(b['camera'])
    assert not torch.allclose(student(b, mask)['damage'], out_a['damage'])


def test_members_differ_and_train_mode_exposes_training_heads():
    torch.manual_seed(0)
    s = Student(shapes_from_spec(FIELD_SPEC), ModelConfig(), members=2, teacher_dim=48).train()
    out = s(random_inputs(FIELD_SPEC, 3), torch.ones(3, 4), reversal=1.0)
    assert out['projection'].shape == (3, 2, 48)
    assert out['lighting'].shape == (3, 2, 3)
    assert not torch.allclose(out['damage'][:, 0], out['damage'][:, 1])


def test_teacher_and_student_sizes():
    teacher = Teacher(shapes_from_spec(TEACHER_SPEC),
                      ModelConfig(d_model=48, stem_patch=4), privileged=5).eval()
    out = teacher(random_inputs(TEACHER_SPEC, 2), torch.ones(2, 4))
    assert out['privileged'].shape == (2, 5)
    assert out['feature'].shape == (2, 48)
    members = 3
    student = Student(shapes_from_spec(FIELD_SPEC), ModelConfig(), members=members,
                      teacher_dim=48)
    assert count_parameters(student) < 1_000_000        # a few MB at most as float32
    # docs/distillation.md: the teacher (d = 48) is wider than one student member (d = 32),
    # yet smaller than the whole ensemble
    assert count_parameters(student) / members < count_parameters(teacher) \
        < count_parameters(student)


def test_frame_norm_makes_the_camera_encoding_brightness_invariant():
    # a lighting change scales the raw frame; after the per-channel dataset normalisation that
    # is an affine map per channel, which per-frame standardisation removes
    torch.manual_seed(0)
    frames = torch.rand(2, 3, 3, 32, 32)
    darker = 0.6 * frames - 0.2
    for pool in ('flatten', 'mean'):
        cnn = FrameCNN((3, 32, 32), (8, 8), 16, pool=pool, frame_norm=True)
        torch.testing.assert_close(cnn(frames), cnn(darker), rtol=1e-3, atol=1e-3)
    plain = FrameCNN((3, 32, 32), (8, 8), 16, frame_norm=False)
    assert not torch.allclose(plain(frames), plain(darker), atol=1e-2)


def test_flatten_pool_tells_where_a_thin_line_is():
    # the arm is a 1-2 pixel curve: its pose is where it is in the frame. A global average
    # pool of a translation-equivariant CNN barely sees a shift; the flattened map does.
    torch.manual_seed(0)
    left, right = torch.zeros(1, 1, 3, 32, 32), torch.zeros(1, 1, 3, 32, 32)
    left[..., 8:24, 10] = 1.0
    right[..., 8:24, 18] = 1.0
    gaps = {}
    for pool in ('flatten', 'mean'):
        cnn = FrameCNN((3, 32, 32), (16, 32, 32), 32, pool=pool, frame_norm=False)
        with torch.no_grad():
            a, b = cnn(left), cnn(right)
        gaps[pool] = float((a - b).norm() / (a.norm() + b.norm()))
    assert gaps['mean'] < 1e-3 < gaps['flatten']


def test_temporal_conv_tokens_see_seven_steps_either_side():
    # dilations 1, 2, 4 with kernel 3: a token reads its step +-7 and nothing further,
    # where a per-step MLP reads its own step only; the time positions stay
    torch.manual_seed(0)
    x = torch.randn(1, 40, 6)
    moved = x.clone()
    moved[0, 20] += 5.0
    for encoder, reach in ((TemporalConv(6, 16), 7), (StepMLP(6, 16), 0)):
        with torch.no_grad():
            changed = (encoder(x) - encoder(moved)).abs().amax(dim=-1)[0] > 1e-6
        assert changed.shape == (40,)
        assert changed.nonzero().flatten().tolist() == list(range(20 - reach, 21 + reach))


def test_temporal_conv_student_takes_every_mask():
    torch.manual_seed(0)
    cfg = ModelConfig(vector_encoder='temporal_conv')
    model = Student(shapes_from_spec(FIELD_SPEC), cfg, members=2, teacher_dim=48).eval()
    out = model(random_inputs(FIELD_SPEC, len(MASKS)), torch.tensor(MASKS))
    assert isinstance(model.members[0].encoder.encoders['proprio'], TemporalConv)
    assert all(torch.isfinite(v).all() for v in out.values())
