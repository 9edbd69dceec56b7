"""Profile catalogue and parameter-file merging (softmaint_core.profiles)."""
import pytest
from softmaint_core.profiles import (agent_actions, agent_thresholds, flatten, node_parameters,
                                     profile, ProfileError, PROFILES)
from softmaint_core.spec import ENVIRONMENT_FIELDS


def test_catalogue_names_what_each_robot_senses():
    assert profile('default').unsensed == ()
    assert profile('medical').unsensed == ('co2',)
    assert profile('medical').unsensed_columns == (ENVIRONMENT_FIELDS.index('co2'),)
    assert profile('deep_sea').unsensed == ('humidity', 'co2')
    assert profile('carbon_negative_buildings').sensed == ENVIRONMENT_FIELDS
    assert all(set(p.sensed) <= set(ENVIRONMENT_FIELDS) and p.sensed for p in PROFILES.values())
    with pytest.raises(ProfileError, match=r"unknown profile 'moon'; known: \['carbon_neg"):
        profile('moon')


def test_flatten_and_merge():
    assert flatten({'a': {'b': {'c': 1}}, 'd': [1, 2]}) == {'a.b.c': 1, 'd': [1, 2]}
    merged = node_parameters([('x', {'softmaint_agent': {'ros__parameters': {
        'thresholds': {'critical_urgency': 0.9}, 'actions': {'shutdown_mode': 'surface'}}}})])
    assert agent_thresholds(merged['softmaint_agent']).critical_urgency == 0.9
    assert agent_actions(merged['softmaint_agent']).shutdown_meaning.startswith('safe surfacing')
    assert merged['softmaint_sim'] == {}
    with pytest.raises(ProfileError, match='x: must be a mapping of node names'):
        node_parameters([('x', ['softmaint_agent'])])
    with pytest.raises(ProfileError, match=r"unknown parameters \['actions.colour'\]"):
        agent_actions({'actions.colour': 'red'})
