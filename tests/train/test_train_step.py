"""The one optimiser step shared by the teacher, student and EWC fine-tuning loops."""
import pytest
from softmaint_train.train import _optimiser_step, TrainingError
import torch
from torch import nn


def _setup():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.5)


class _Bar:
    def __init__(self):
        self.shown = []

    def set_postfix(self, **kwargs):
        self.shown.append(kwargs)


def test_step_sets_the_rate_clips_and_logs_every_ten_steps():
    model, opt = _setup()
    before = model.weight.detach().clone()
    loss = 100.0 * model(torch.ones(1, 2)).sum()    # gradient norm 100 * sqrt(3)
    bar = _Bar()
    _optimiser_step(opt, model, loss, {'x': loss}, 'test', 10, lr=0.1, bar=bar)
    assert opt.param_groups[0]['lr'] == 0.1
    # clipped to norm 1: each of the three gradient entries is 1 / sqrt(3)
    step = (before - model.weight.detach()) / 0.1
    assert step.numpy().ravel() == pytest.approx([3 ** -0.5, 3 ** -0.5], rel=1e-5)
    assert bar.shown == [{'loss': f'{loss.item():.3f}'}]
    loss = model(torch.ones(1, 2)).sum()
    _optimiser_step(opt, model, loss, {'x': loss}, 'test', 11, lr=0.1, bar=bar)
    assert len(bar.shown) == 1


def test_step_without_rate_or_clipping_keeps_the_rate_and_the_full_gradient():
    model, opt = _setup()
    before = model.weight.detach().clone()
    loss = 100.0 * model(torch.ones(1, 2)).sum()
    _optimiser_step(opt, model, loss, {'x': loss}, 'test', 0, clip=None)
    assert opt.param_groups[0]['lr'] == 0.5
    assert (before - model.weight.detach()).numpy().ravel() == pytest.approx([50.0, 50.0])


def test_non_finite_loss_names_the_stage_step_and_terms_and_does_not_update():
    model, opt = _setup()
    before = model.weight.detach().clone()
    loss = model(torch.ones(1, 2)).sum() * float('nan')
    with pytest.raises(TrainingError, match=r'finetune: non-finite loss at step 3 \(ewc=nan'):
        _optimiser_step(opt, model, loss, {'ewc': loss}, 'finetune', 3)
    assert torch.equal(model.weight, before)
