import pytest

from lavka.integrations.testing import api_client


@pytest.fixture
def api(shop, settings):
    """A full-access key with every scope, rate limit off."""
    settings.LAVKA_API_RATE_LIMIT = 0
    settings.LAVKA_API_TELEPHONY_RATE_LIMIT = 0
    return api_client()


@pytest.fixture
def make_api(shop, settings):
    settings.LAVKA_API_RATE_LIMIT = 0
    settings.LAVKA_API_TELEPHONY_RATE_LIMIT = 0
    return api_client
