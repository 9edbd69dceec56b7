"""Plots of a run: the whole timeline, and a close-up around each injected fault."""
from pathlib import Path
from typing import List

from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
from .timeline import ACTIONS, Onset, Timeline

ACTION_COLOURS = dict(zip(ACTIONS, ('#d9f0d3', '#fee391', '#fdae6b', '#e31a1c', '#9ecae1')))
# A fault close-up shows this long before and after the onset [s].
BEFORE_FAULT, AFTER_FAULT = 10.0, 30.0


def _pyplot():
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise RuntimeError('plotting needs matplotlib: pip install matplotlib') from err
    return plt


def _start(timeline: Timeline) -> float:
    return min([s.stamp for s in timeline.truth] + [p.stamp for p in timeline.predictions]
               or [0.0])


def _urgency_panel(axis, timeline: Timeline, t0: float) -> None:
    axis.plot([s.stamp - t0 for s in timeline.truth], [s.urgency for s in timeline.truth],
              color='black', lw=2, label='true urgency')
    axis.plot([p.stamp - t0 for p in timeline.predictions],
              [p.urgency for p in timeline.predictions], 'o-', ms=3, color='#3182bd',
              label='predicted urgency')
    axis.plot([p.stamp - t0 for p in timeline.predictions],
              [p.uncertainty for p in timeline.predictions], ':', color='#756bb1',
              label='uncertainty')
    axis.set_ylim(0, 1.0)
    axis.set_ylabel('[0, 1]')
    axis.legend(loc='center left', fontsize=8)


def _decision_band(axis, timeline: Timeline, t0: float) -> None:
    end = timeline.predictions[-1].stamp if timeline.predictions else t0
    stamps = [d.stamp for d in timeline.decisions[1:]] + [end]
    for decision, until in zip(timeline.decisions, stamps):
        axis.axvspan(decision.stamp - t0, until - t0, color=ACTION_COLOURS[decision.action])
    for action, colour in ACTION_COLOURS.items():
        axis.plot([], [], lw=8, color=colour, label=action.replace('_', ' '))
    axis.set_yticks([])
    axis.set_xlabel('time [s]')
    axis.set_ylabel('decision')
    axis.legend(loc='upper center', bbox_to_anchor=(0.5, -0.55), ncol=5, fontsize=7)


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_timeline(timeline: Timeline, path: Path, title: str) -> Path:
    """Write a PNG of the run to `path` (matplotlib is needed only here)."""
    plt = _pyplot()
    t0 = _start(timeline)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True,
                                      gridspec_kw={'height_ratios': [3, 1]})
    _urgency_panel(top, timeline, t0)
    for onset in timeline.onsets():
        top.axvline(onset.stamp - t0, color='grey', ls='--', lw=1)
        top.text(onset.stamp - t0, 0.98, f'{onset.head}: {onset.label}', rotation=90,
                 fontsize=7, va='top', ha='right')
    top.set_title(title, fontsize=10)
    _decision_band(bottom, timeline, t0)
    return _save(fig, plt, path)


def plot_fault(timeline: Timeline, onset: Onset, path: Path) -> Path:
    """Write a close-up of one fault: predicted class, urgency, uncertainty and decisions."""
    plt = _pyplot()
    t0 = _start(timeline)
    classes = DAMAGE_TYPES if onset.head == 'damage' else FATIGUE_LEVELS
    fig, (labels, middle, bottom) = plt.subplots(
        3, 1, figsize=(9, 6.5), sharex=True, gridspec_kw={'height_ratios': [2, 2, 1]})
    labels.step([s.stamp - t0 for s in timeline.truth],
                [getattr(s, onset.head) for s in timeline.truth], where='post', color='black',
                lw=2, label=f'true {onset.head}')
    labels.plot([p.stamp - t0 for p in timeline.predictions],
                [getattr(p, onset.head) for p in timeline.predictions], 'o', ms=4,
                color='#3182bd', label=f'predicted {onset.head} (most likely)')
    labels.set_yticks(range(len(classes)), classes, fontsize=7)
    labels.legend(loc='upper left', fontsize=8)
    detected = ('not detected' if onset.detected_after is None
                else f'detected after {onset.detected_after:.1f} s')
    acted = ('not acted on' if onset.acted_after is None
             else f'acted on after {onset.acted_after:.1f} s')
    labels.set_title(f'{onset.head} became {onset.label} at {onset.stamp - t0:.1f} s: '
                     f'{detected}, {acted}', fontsize=10)
    _urgency_panel(middle, timeline, t0)
    _decision_band(bottom, timeline, t0)
    for axis in (labels, middle, bottom):
        axis.axvline(onset.stamp - t0, color='grey', ls='--', lw=1)
    bottom.set_xlim(onset.stamp - t0 - BEFORE_FAULT, onset.stamp - t0 + AFTER_FAULT)
    return _save(fig, plt, path)


def plot_faults(timeline: Timeline, out_dir: Path) -> List[Path]:
    """Write one close-up per fault onset into `out_dir`; return their paths in onset order."""
    return [plot_fault(timeline, onset,
                       Path(out_dir) / f'fault_{i}_{onset.head}_{onset.label}.png')
            for i, onset in enumerate(timeline.onsets(), start=1)]
