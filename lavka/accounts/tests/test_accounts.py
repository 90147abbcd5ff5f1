import subprocess
import sys

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.core.cache import cache
from django.urls import reverse

from lavka.accounts.actions import create_user
from lavka.accounts.models import User
from lavka.core.actor import Actor
from lavka.core.testing import PASSWORD


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_passwords_are_hashed_with_argon2(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    user = create_user("irina", role="manager", password="a-long-passphrase", actor=Actor.system())
    assert identify_hasher(user.password).algorithm == "argon2"
    assert "a-long-passphrase" not in user.password


def test_weak_password_is_refused(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        create_user("irina", role="manager", password="123", actor=Actor.system())


def test_login_works_and_then_is_rate_limited(client, shop):
    url = reverse("accounts:login")
    for _ in range(5):
        response = client.post(url, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    locked = client.post(url, {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert not locked.wsgi_request.user.is_authenticated
    cache.clear()
    ok = client.post(url, {"username": "alice", "password": PASSWORD})
    assert ok.status_code == 302


def test_rate_limit_counts_per_address_across_usernames(client, shop):
    url = reverse("accounts:login")
    for name in ("a", "b", "c", "d", "e"):
        client.post(url, {"username": name, "password": "wrong"})
    assert client.post(url, {"username": "bob", "password": PASSWORD}).status_code == 429


def test_pages_require_login(client, db):
    response = client.get("/customers/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_language_follows_the_user(client, shop):
    shop.alice.language = "ru"
    shop.alice.save()
    client.force_login(shop.alice)
    response = client.get(reverse("orders:list"))
    assert response.headers["Content-Language"] == "ru"


@pytest.mark.slow
def test_user_create_command(tmp_path):
    env = {
        "LAVKA_VAR_DIR": str(tmp_path),
        "LAVKA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PATH": "/usr/bin:/bin",
    }
    lavka = [sys.executable, "-m", "lavka.cli"]
    subprocess.run([*lavka, "migrate"], env=env, check=True, timeout=120)
    made = subprocess.run(
        [*lavka, "user", "create", "--username", "root", "--role", "admin", "--password-stdin"],
        input="a-long-passphrase\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "created admin root" in made.stdout
    unknown_site = subprocess.run(
        [
            *lavka,
            "user",
            "create",
            "--username",
            "m",
            "--role",
            "manager",
            "--site",
            "nope",
            "--password-stdin",
        ],
        input="a-long-passphrase\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown_site.returncode == 2 and "unknown site" in unknown_site.stderr


def test_user_model_keeps_site_ids(shop):
    assert User.objects.get(username="alice").site_ids == [shop.site.pk]


def test_working_hours_are_parsed_and_checked():
    from lavka.accounts.hours import format_working_hours, parse_working_hours

    hours = parse_working_hours("mon 09:00-18:00\n\nFri 10:00-16:30\n")
    assert hours == {"mon": ["09:00", "18:00"], "fri": ["10:00", "16:30"]}
    assert parse_working_hours(format_working_hours(hours)) == hours
    for bad in ("monday 09:00-18:00", "mon 9-18", "mon 18:00-09:00", "mon 09:00-18:00\nmon 10:00-11:00"):
        with pytest.raises(ValueError):
            parse_working_hours(bad)


def test_admin_sets_working_hours_on_the_settings_page(client, shop):
    client.force_login(shop.admin)
    url = reverse("settings:user_edit", args=[shop.alice.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="working_hours"' in page.content.decode()
    form = {
        "first_name": "Alice",
        "last_name": "",
        "email": "",
        "role": "manager",
        "sites": [shop.site.pk],
        "language": "en",
        "phone_extension": "",
        "password": "",
        "team": "",
    }
    bad = client.post(url, {**form, "working_hours": "mon 18:00-09:00"})
    assert bad.status_code in (200, 400) and "working_hours" in bad.context["form"].errors
    client.post(url, {**form, "working_hours": "mon 09:00-18:00\ntue 09:00-18:00"})
    shop.alice.refresh_from_db()
    assert shop.alice.working_hours == {"mon": ["09:00", "18:00"], "tue": ["09:00", "18:00"]}
