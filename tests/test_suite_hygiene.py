"""The suite itself: every test runs under a time limit, so a hung stage fails instead of stalling CI."""


def test_every_test_has_a_default_timeout(pytestconfig):
    assert 600 <= float(pytestconfig.getini("timeout")) <= 900
    assert pytestconfig.getoption("timeout") is None or float(pytestconfig.getoption("timeout")) > 0
