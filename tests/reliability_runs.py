"""The reliability runs' record in docs/reports/reliability/summary.json (issue #17)."""
from summary_file import merge_summary, RELIABILITY_SUMMARY

# The runs here that count node processes which died unexpectedly.
RUNS = ('student_kill', 'agent_kill', 'soak')


def record_run(run: str, crashes: int, **values) -> dict:
    """
    Merge one run's numbers and its crash count into the summary; return the whole summary.

    Each run keeps its own count (crashes_<run>), so running a test again replaces its count
    instead of adding to it; `crashes` is the sum of every crashes_<run> in the file (the
    bad-input runs write theirs too). Writers follow one another (one pytest session; the soak
    by hand), so the sum over the merged view is current.
    """
    if run not in RUNS:
        raise ValueError(f'run must be one of {RUNS}, got {run!r}')
    merged = merge_summary(RELIABILITY_SUMMARY, {f'crashes_{run}': crashes, **values})
    return merge_summary(RELIABILITY_SUMMARY, {'crashes': sum(
        value for key, value in merged.items() if key.startswith('crashes_'))})
