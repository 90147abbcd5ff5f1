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


@pytest.fixture(autouse=True)
def _no_cached_rows_between_tests():
    """Process caches of rows (enabled rules, compiled conditions, reference books) must not outlive
    the test whose transaction made them: the next test's database no longer has those rows."""
    yield
    from lavka.automation import conditions, engine

    engine.forget_rules()
    conditions.forget()
