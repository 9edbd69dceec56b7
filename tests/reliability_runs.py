"""The reliability runs' record in docs/reports/reliability/summary.json (issue #17)."""
from summary_file import merge_summary, RELIABILITY_SUMMARY

# The runs that count node processes which died unexpectedly (bad input: tests/bad_input.py).
RUNS = ('student_kill', 'agent_kill', 'soak', 'bad_input_ingestion', 'bad_input_inference',
        'bad_input_agent')


def record_run(run: str, crashes: int, **values) -> dict:
    """
    Merge one run's numbers and its crash count into the summary; return the whole summary.

    Each run keeps its own count (crashes_<run>), so running a test again replaces its count
    instead of adding to it; `crashes` is the sum of every crashes_<run> in the file. Writers follow one another (one pytest session; the soak
    by hand), so the sum over the merged view is current.
    """
    if run not in RUNS:
        raise ValueError(f'run must be one of {RUNS}, got {run!r}')
    merged = merge_summary(RELIABILITY_SUMMARY, {f'crashes_{run}': crashes, **values})
    return merge_summary(RELIABILITY_SUMMARY, {'crashes': sum(
        value for key, value in merged.items() if key.startswith('crashes_'))})
