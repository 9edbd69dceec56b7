"""Profile catalogue and parameter-file merging (softmaint_core.profiles)."""
import pytest
from softmaint_core.profiles import (agent_actions, agent_thresholds, flatten, node_parameters,
                                     parameter_files, profile, ProfileError, PROFILES)
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


def test_parameter_files_put_the_profile_overlay_after_the_base_file(tmp_path):
    base, overlays = tmp_path / 'softmaint.yaml', tmp_path / 'profiles'
    overlays.mkdir()
    base.write_text('{}\n')
    (overlays / 'medical.yaml').write_text('{}\n')
    assert parameter_files(base, 'medical', overlays) == [base, overlays / 'medical.yaml']
    assert parameter_files(str(base), '', overlays) == [base]
    assert parameter_files(base, 'default', overlays) == [base]
    with pytest.raises(ProfileError, match=r"profile 'moon' is not one of \['medical'\]"):
        parameter_files(base, 'moon', overlays)
    with pytest.raises(FileNotFoundError, match='params_file .*none.yaml not found'):
        parameter_files(tmp_path / 'none.yaml', 'medical', overlays)
