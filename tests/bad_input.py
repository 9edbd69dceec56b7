"""
Bad input to a node (issue #17): named classes of malformed or hostile input, and their record.

Each test module sends its classes through one node process and records, per input, how many
classes were sent and handled (`malformed_classes`) and whether the process died (the run
bad_input_<node> of tests/reliability_runs.py) in docs/reports/reliability/summary.json.
"""
from collections import defaultdict
from typing import Callable, Dict, NamedTuple, Set

import pytest
from reliability_runs import record_run


class Case(NamedTuple):
    """One class of bad input: where it goes, what it is, the reason the node must give."""

    input_name: str         # topic, service or action name (softmaint_core.topics)
    name: str               # the class, e.g. 'nan' or 'wrong_encoding'
    reason: str             # the reason the node counts it under
    make: Callable          # builds the message, request or goal (arguments: see the module)


def params(cases):
    """Return pytest parameters of cases, each visible in the test id as input-name."""
    return [pytest.param(case, id=f'{case.input_name}-{case.name}') for case in cases]


class Record:
    """Classes handled per input and whether the node died; written when the module ends."""

    def __init__(self, node: str):
        self.node = node
        self.handled: Dict[str, Set[str]] = defaultdict(set)

    def handled_case(self, case: Case) -> None:
        """Note a class the node rejected with its reason and survived."""
        self.handled[case.input_name].add(case.name)

    def write(self, crashed: bool) -> dict:
        """Merge this module's counts into the reliability summary; return the whole summary."""
        return record_run(f'bad_input_{self.node}', int(crashed), malformed_classes={
            name: len(cases) for name, cases in self.handled.items()})
