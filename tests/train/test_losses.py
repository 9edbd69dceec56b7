"""Every registered loss against values computed by hand (numbers in the comments)."""
import math
from pathlib import Path

import numpy as np
import pytest
from softmaint_train import losses as L
from softmaint_train.models import GradientReversal
import torch

LN3 = math.log(3.0)


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_registry_has_every_loss_with_a_paper_or_formula():
    expected = {'cross_entropy', 'soft_cross_entropy', 'kd_kl', 'kd_objective', 'urgency_mse',
                'privileged_mse', 'feature_cosine', 'feature_contrastive', 'rkd_distance',
                'rkd_angle', 'product_state_fidelity', 'reconstruction_mse', 'unimodal_ce',
                'domain_adversarial', 'ewc_penalty', 'sigmoid_schedule', 'linear_ramp',
                'convex_mix', 'log_rul', 'log_rul_kd', 'dann_reversal', 'modality_dropout'}
    assert expected <= set(L.LOSSES)
    for name, fn in L.LOSSES.items():
        assert fn.__doc__ and ('=' in fn.__doc__), name
    with pytest.raises(KeyError, match='unknown loss'):
        L.get_loss('nope')


def test_training_code_calls_losses_through_the_registry():
    from softmaint_train import train
    source = Path(train.__file__).read_text()
    registered = [id(fn) for fn in L.LOSSES.values()]
    assert not [name for name, obj in vars(train).items() if id(obj) in registered]
    assert not hasattr(train, 'L') and not hasattr(train, 'losses')
    for direct in ('F.cross_entropy', 'F.mse_loss', 'F.nll_loss', 'F.kl_div'):
        assert direct not in source, direct


def test_cross_entropy_of_hard_labels():
    # softmax([0, ln 3]) = [0.25, 0.75]: labels 1 and 0 cost -ln 0.75 and -ln 0.25
    logits = t([[0.0, LN3], [0.0, LN3]])
    assert L.cross_entropy(logits, torch.tensor([1, 0])).item() == pytest.approx(
        (-math.log(0.75) - math.log(0.25)) / 2, rel=1e-5)


def test_privileged_mse():
    # squared errors 1, 4, 0, 1 -> mean 1.5
    assert L.privileged_mse(t([[1.0, 2.0], [0.0, 1.0]]), t([[0.0, 0.0], [0.0, 0.0]])).item() \
        == pytest.approx(1.5)


def test_soft_cross_entropy():
    # softmax([0, ln 3]) = [0.25, 0.75]: CE(class 1) = -ln 0.75, CE(class 0) = -ln 0.25
    logits = t([[0.0, LN3], [0.0, LN3]])
    targets = t([[0.0, 1.0], [1.0, 0.0]])
    assert L.soft_cross_entropy(logits, targets).item() == pytest.approx(
        (-math.log(0.75) - math.log(0.25)) / 2, rel=1e-5)
    assert L.soft_cross_entropy(logits, targets, t([1.0, 0.0])).item() == pytest.approx(
        0.287682, abs=1e-5)
    # a mixup target 0.5/0.5: 0.5 * (-ln .25) + 0.5 * (-ln .75) = 0.836988
    assert L.soft_cross_entropy(logits[:1], t([[0.5, 0.5]])).item() == pytest.approx(
        0.836988, abs=1e-5)


def test_kd_kl_temperature_scaled():
    # T = 2: teacher/T = [0, ln 3] -> [.25, .75]; student [0, 0] -> [.5, .5]
    # KL = .25 ln(.5) + .75 ln(1.5) = 0.130812; times T^2 = 4 -> 0.523248
    loss = L.kd_kl(t([[0.0, 0.0]]), t([[0.0, 2 * LN3]]), temperature=2.0)
    assert loss.item() == pytest.approx(0.523248, abs=1e-5)
    assert L.kd_kl(t([[1.0, 2.0]]), t([[1.0, 2.0]]), 4.0).item() == pytest.approx(0, abs=1e-7)


def test_presence_kd_by_hand():
    # teacher [none, a, b] = softmax([ln 3, 0, 0]) = [.6, .2, .2]: P(damage) .4
    # student softmax([0, 0, 0]): P(damage) 2/3. KL = .6 ln(.6 / (1/3)) + .4 ln(.4 / (2/3))
    # = 0.352671 - 0.204330 = 0.148341
    loss = L.presence_kd(t([[0.0, 0.0, 0.0]]), t([[LN3, 0.0, 0.0]]))
    assert loss.item() == pytest.approx(0.148341, abs=1e-5)
    # only the marginal counts: damage moved between types costs nothing
    assert L.presence_kd(t([[LN3, 5.0, -5.0]]), t([[LN3, -5.0, 5.0]])).item() == pytest.approx(
        0.0, abs=1e-6)
    assert L.presence_kd(t([[0.0, 0.0, 0.0]]), t([[0.0, 0.0, LN3]]), none=2).item() > 0


def test_kd_objective_and_urgency():
    assert L.kd_objective(t(2.0), t(1.0), 0.25).item() == pytest.approx(1.75)
    # (0.5^2 + 0.4^2) / 2 = 0.205; weight only the second: 0.16
    pred, target = t([0.5, 0.9]), t([0.0, 0.5])
    assert L.urgency_mse(pred, target).item() == pytest.approx(0.205, abs=1e-6)
    assert L.urgency_mse(pred, target, t([0.0, 1.0])).item() == pytest.approx(0.16, abs=1e-6)


def test_log_rul_loss_by_hand():
    # S = 2. u = 0.5 -> z* = ln(0.5) / 2 = -0.346574; z = 0: (0.346574)^2 = 0.120113
    # u = 0 is censored (RUL >= horizon): z = -0.5 costs 0.25, z = +1 costs nothing
    z, u = t([0.0, -0.5, 1.0]), t([0.5, 0.0, 0.0])
    per = [0.120113, 0.25, 0.0]
    assert L.log_rul_loss(z, u).item() == pytest.approx(sum(per) / 3, abs=1e-6)
    assert L.log_rul_loss(z, u, t([0.0, 1.0, 1.0])).item() == pytest.approx(0.125, abs=1e-6)
    assert math.isnan(L.log_rul_loss(z, t([float('nan'), 0.0, 0.0])).item())


def test_log_rul_kd_by_hand():
    # not censored: a teacher's z = +0.7 beyond the horizon is a target like any other
    # (0.2 - 0.7)^2 = 0.25, (-0.5 - -0.3)^2 = 0.04 -> mean 0.145; weights (0, 1) -> 0.04
    z, teacher_z = t([0.2, -0.5]), t([0.7, -0.3])
    assert L.log_rul_kd(z, teacher_z).item() == pytest.approx(0.145, abs=1e-6)
    assert L.log_rul_kd(z, teacher_z, t([0.0, 1.0])).item() == pytest.approx(0.04, abs=1e-6)


def test_urgency_distillation_reads_the_teacher_output_its_config_names():
    from softmaint_train.config import _CHOICES
    from softmaint_train.train import URGENCY_KD, urgency_kd
    assert set(URGENCY_KD) == set(_CHOICES['distill.urgency_kd'])
    out = {'urgency': t([[0.5], [0.9]]), 'log_rul': t([[0.2], [-0.5]])}
    batch = {'t_urgency': t([0.0, 0.5]), 't_log_rul': t([0.7, -0.3])}
    # censored: z = 0.2 passes the teacher's u = 0 (z >= 0), (-0.5 - ln(0.5) / 2)^2 = 0.023540
    assert urgency_kd('censored', 'log_rul', out, 0, batch).item() == pytest.approx(0.011770,
                                                                                  abs=1e-6)
    assert urgency_kd('log_rul', 'log_rul', out, 0, batch).item() == pytest.approx(0.145,
                                                                                 abs=1e-6)


def test_mixing_blends_every_teacher_output_with_the_same_weights():
    from softmaint_train.config import MixConfig
    from softmaint_train.train import _mix, TEACHER_OUTPUTS
    n = 6
    batch = {'inputs': {'proprio': torch.zeros(n, 3)}, 'mask': torch.ones(n, 1),
             'data_mask': torch.ones(n, 1), 'labelled': torch.zeros(n),
             'lighting': torch.zeros(n, dtype=torch.long), 'urgency': torch.arange(n) / 10.0,
             **{'t_' + k: torch.arange(n, dtype=torch.float32) for k in TEACHER_OUTPUTS}}
    out = _mix(batch, MixConfig(enabled=True, noise=0.0), np.random.default_rng(0))
    for key in TEACHER_OUTPUTS:           # the same convex combination as the labels' urgency
        torch.testing.assert_close(out['t_' + key], out['urgency'] * 10.0)
    assert not torch.equal(out['t_log_rul'], batch['t_log_rul'])


def test_every_configurable_urgency_loss_is_registered():
    from softmaint_train.config import _CHOICES
    from softmaint_train.train import URGENCY_LOSSES
    for key in ('teacher.urgency_loss', 'student.urgency_loss'):
        assert set(URGENCY_LOSSES) == set(_CHOICES[key])
    for name, output in URGENCY_LOSSES.values():
        assert L.get_loss(name) and output in ('urgency', 'log_rul')


def test_the_configured_urgency_loss_picks_its_output():
    from softmaint_train.train import urgency_loss
    u, z, target = t([0.5, 0.9]), t([0.0, -0.5]), t([0.0, 0.5])
    # mse reads u only: 0.205 as above; log_rul reads z only: censored 0 -> 0, and
    # (-0.5 - ln(0.5) / 2)^2 = (-0.153426)^2 = 0.023540 -> mean 0.011770
    assert urgency_loss('mse', u, z, target).item() == pytest.approx(0.205, abs=1e-6)
    assert urgency_loss('log_rul', u, z, target).item() == pytest.approx(0.011770, abs=1e-6)
    assert urgency_loss('log_rul', u, z, target, t([1.0, 0.0])).item() == 0.0


def test_urgency_from_log_rul_matches_the_taxonomy():
    from softmaint_core.taxonomy import URGENCY_HORIZON_CYCLES, urgency_from_rul
    z = t([-3.0, -0.2, 0.0, 0.7, 50.0])
    got = L.urgency_from_log_rul(z)
    rul = URGENCY_HORIZON_CYCLES * np.exp(L.LOG_RUL_SCALE * z.double().numpy().clip(max=5))
    assert got.numpy() == pytest.approx([urgency_from_rul(r) for r in rul], abs=1e-6)
    # the exact target of a label maps back to the label
    u = t([0.05, 0.5, 0.97])
    z_star = torch.log1p(-u) / L.LOG_RUL_SCALE
    assert L.urgency_from_log_rul(z_star).numpy() == pytest.approx(u.numpy(), abs=1e-6)
    # the gradient flows in the censored region too
    z = t([-0.5, 1.0]).requires_grad_()
    L.log_rul_loss(z, t([0.0, 0.3])).backward()
    assert (z.grad != 0).all() and torch.isfinite(z.grad).all()


def test_feature_cosine():
    # cos((1,0),(1,1)) = 1/sqrt 2 -> 0.292893; cos((0,2),(0,-1)) = -1 -> 2; mean 1.146447
    loss = L.feature_cosine(t([[1.0, 0.0], [0.0, 2.0]]), t([[1.0, 1.0], [0.0, -1.0]]))
    assert loss.item() == pytest.approx(1.146447, abs=1e-5)


def test_feature_contrastive():
    # identity logits / tau: -log(e^(1/tau) / (e^(1/tau) + 1)) = log(1 + e^(-1/tau))
    eye = t([[1.0, 0.0], [0.0, 1.0]])
    assert L.feature_contrastive(eye, eye, 1.0).item() == pytest.approx(0.313262, abs=1e-5)
    assert L.feature_contrastive(eye, eye, 0.5).item() == pytest.approx(0.126928, abs=1e-5)


def test_rkd_distance():
    # student right triangle: distances 1, 1, sqrt 2, mean (2 + sqrt 2) / 3
    # teacher collinear 0, 1, 2: distances 1, 2, 1, mean 4/3
    mu_s = (2 + math.sqrt(2)) / 3
    diffs = [1 / mu_s - 0.75, 1 / mu_s - 1.5, math.sqrt(2) / mu_s - 0.75]
    expected = sum(0.5 * d * d for d in diffs) / 3        # all |d| < 1: Huber = d^2 / 2
    s = t([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    teacher = t([[0.0], [1.0], [2.0]])
    assert L.rkd_distance(s, teacher).item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(0.107549, abs=1e-5)
    assert L.rkd_distance(s, 3.0 * s).item() == pytest.approx(0.0, abs=1e-6)  # scale-free


def test_rkd_angle():
    # cross terms (each twice) of 27 triplets: vertex 0: 0 vs 1 -> Huber 0.5;
    # vertex 1: 1/sqrt2 vs -1 -> 1.707107 - 0.5; vertex 2: 1/sqrt2 vs 1 -> 0.5 * 0.292893^2
    expected = 2 * (0.5 + (1 / math.sqrt(2) + 1 - 0.5)
                    + 0.5 * (1 - 1 / math.sqrt(2)) ** 2) / 27
    s = t([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    teacher = t([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert expected == pytest.approx(3.5 / 27, abs=1e-6)
    assert L.rkd_angle(s, teacher).item() == pytest.approx(expected, abs=1e-5)


def test_product_state_fidelity_closed_form():
    # half-angle differences (-pi/4, 0): cos^2 = (0.5, 1) -> F = 0.5
    a, b = t([[0.0, math.pi / 2]]), t([[math.pi / 2, math.pi / 2]])
    assert L.product_state_fidelity(a, b, 'one_minus').item() == pytest.approx(0.5, abs=1e-6)
    assert L.product_state_fidelity(a, b, 'neg_log').item() == pytest.approx(
        math.log(2) / 2, abs=1e-6)
    # orthogonal qubit (angle difference pi) -> F = 0
    assert L.product_state_fidelity(t([[math.pi, 0.0]]), t([[0.0, 0.0]]),
                                    'one_minus').item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        L.product_state_fidelity(a, b, 'other')


def test_product_state_fidelity_equals_explicit_state_overlap():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, np.pi, 5), rng.uniform(0, np.pi, 5)

    def state(theta):
        psi = np.ones(1)
        for x in theta:
            psi = np.kron(psi, [np.cos(x / 2), np.sin(x / 2)])
        return psi

    fidelity = float(np.dot(state(a), state(b)) ** 2)       # 32-dim state vectors
    loss = L.product_state_fidelity(t(np.array([a])), t(np.array([b])), 'one_minus').item()
    assert 1 - loss == pytest.approx(fidelity, abs=1e-5)


def test_reconstruction_mse():
    pred = t([[[[0.0, 0.0], [1.0, 1.0]]]])          # [B=1, K=1, M=2, E=2]
    target = t([[[[1.0, 1.0], [1.0, 3.0]]]])        # per-modality MSE: 1 and 2
    assert L.reconstruction_mse(pred, target, t([[[1.0, 0.0]]])).item() == pytest.approx(1.0)
    assert L.reconstruction_mse(pred, target, t([[[1.0, 1.0]]])).item() == pytest.approx(1.5)


def test_unimodal_ce():
    # zero logits: CE = ln 3 (fatigue) + ln 5 (damage) = ln 15 for any target; the second
    # modality (weight 0) does not count, whatever its logits
    logits = torch.zeros(1, 2, 8)
    logits[0, 1] = 7.0
    fatigue, damage = t([[1.0, 0.0, 0.0]]), t([[0.0, 0.5, 0.5, 0.0, 0.0]])
    loss = L.unimodal_ce(logits, fatigue, damage, t([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(15.0), abs=1e-6)


def test_domain_adversarial_and_gradient_reversal():
    loss = L.domain_adversarial(t([[0.0, LN3]]), torch.tensor([1]))
    assert loss.item() == pytest.approx(-math.log(0.75), abs=1e-6)
    x = torch.ones(3, requires_grad=True)
    GradientReversal.apply(x, 0.5).sum().backward()
    assert x.grad.tolist() == [-0.5, -0.5, -0.5]


def test_ewc_penalty():
    # 0.5 * 2 * (1 * 1^2 + 0.5 * 2^2) = 3
    params = [('w', t([1.0, 2.0])), ('other', t([5.0]))]
    value = L.ewc_penalty(params, {'w': t([0.0, 0.0])}, {'w': t([1.0, 0.5])}, 2.0)
    assert value.item() == pytest.approx(3.0)


def test_schedules():
    assert L.sigmoid_schedule(50, 100, 10.0) == pytest.approx(0.5)
    assert L.sigmoid_schedule(100, 100, 10.0) == pytest.approx(1 / (1 + math.exp(-5)))
    assert L.sigmoid_schedule(0, 100, 10.0) == pytest.approx(0.006693, abs=1e-6)
    assert L.linear_ramp(25, 100, 0.5, 0.9) == pytest.approx(0.6)
    assert L.linear_ramp(200, 100, 0.5, 0.9) == pytest.approx(0.9)
    assert L.dann_reversal(0, 100) == 0.0
    assert L.dann_reversal(50, 100) == pytest.approx(2 / (1 + math.exp(-5)) - 1)   # 0.9866
    assert L.dann_reversal(100, 100, gamma=1.0) == pytest.approx(0.462117, abs=1e-6)


def test_convex_mix():
    mixed = L.convex_mix(t([[2.0, 4.0]]), t([[0.0, 0.0]]), t([0.25]))
    assert mixed.tolist() == [[0.5, 1.0]]
    gen = torch.Generator().manual_seed(0)
    noisy = L.convex_mix(torch.zeros(1000, 4), torch.zeros(1000, 4), torch.ones(1000), 0.1,
                         generator=gen)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.1)
