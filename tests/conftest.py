"""Every test folder's shared fixtures come from one plugin, not from each other's conftest."""

pytest_plugins = ["tests.support.fixtures"]
