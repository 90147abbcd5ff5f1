import os
import shutil

import pytest


@pytest.fixture
def shop(db):
    from lavka.core.testing import make_shop

    return make_shop()


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium"):
        return
    if os.environ.get("LAVKA_REQUIRE_BROWSER"):
        raise pytest.UsageError("LAVKA_REQUIRE_BROWSER is set but Debian's chromium is not installed")
    skip = pytest.mark.skip(reason="Debian's chromium is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is deliberately slow; tests that are not about hashing use a fast hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
