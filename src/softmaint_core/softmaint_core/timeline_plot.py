"""Plot of a run: urgency against ground truth, uncertainty, and the decisions over time."""
from pathlib import Path

from .timeline import ACTIONS, Timeline

ACTION_COLOURS = dict(zip(ACTIONS, ('#d9f0d3', '#fee391', '#fdae6b', '#e31a1c', '#9ecae1')))


def plot_timeline(timeline: Timeline, path: Path, title: str) -> Path:
    """Write a PNG of the run to `path` (matplotlib is needed only here)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise RuntimeError('plotting needs matplotlib: pip install matplotlib') from err
    t0 = min([s.stamp for s in timeline.truth] + [p.stamp for p in timeline.predictions]
             or [0.0])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True,
                                      gridspec_kw={'height_ratios': [3, 1]})
    top.plot([s.stamp - t0 for s in timeline.truth], [s.urgency for s in timeline.truth],
             color='black', lw=2, label='true urgency')
    top.plot([p.stamp - t0 for p in timeline.predictions],
             [p.urgency for p in timeline.predictions], 'o-', ms=3, color='#3182bd',
             label='predicted urgency')
    top.plot([p.stamp - t0 for p in timeline.predictions],
             [p.uncertainty for p in timeline.predictions], ':', color='#756bb1',
             label='uncertainty')
    for onset in timeline.onsets():
        top.axvline(onset.stamp - t0, color='grey', ls='--', lw=1)
        top.text(onset.stamp - t0, 0.98, f'{onset.head}: {onset.label}', rotation=90,
                 fontsize=7, va='top', ha='right')
    top.set_ylim(0, 1.0)
    top.set_ylabel('[0, 1]')
    top.legend(loc='center left', fontsize=8)
    top.set_title(title, fontsize=10)
    end = timeline.predictions[-1].stamp if timeline.predictions else t0
    stamps = [d.stamp for d in timeline.decisions[1:]] + [end]
    for decision, until in zip(timeline.decisions, stamps):
        bottom.axvspan(decision.stamp - t0, until - t0, color=ACTION_COLOURS[decision.action])
    for action, colour in ACTION_COLOURS.items():
        bottom.plot([], [], lw=8, color=colour, label=action.replace('_', ' '))
    bottom.set_yticks([])
    bottom.set_xlabel('time [s]')
    bottom.set_ylabel('decision')
    bottom.legend(loc='upper center', bbox_to_anchor=(0.5, -0.55), ncol=5, fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
