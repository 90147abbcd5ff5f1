"""Settings, read from the environment (see .env.example).

Embedded by default: a SQLite file under ./var and the worker inside `lavka serve`.
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("LAVKA_VAR_DIR", Path.cwd() / "var")).resolve()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


DEBUG = env_bool("LAVKA_DEBUG")
SECRET_KEY = os.environ.get("LAVKA_SECRET_KEY", "")
if not SECRET_KEY:
    # A per-installation key kept beside the database, so the demo works with no setup
    # and no secret ever lands in the repository.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("LAVKA_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("LAVKA_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "lavka.core",
    "lavka.accounts",
    "lavka.catalog",
    "lavka.customers",
    "lavka.orders",
    "lavka.inventory",
    "lavka.tasks",
    "lavka.loyalty",
    "lavka.telephony",
    "lavka.analytics",
    "lavka.tracking",
    "lavka.automation",
    "lavka.integrations",
    "lavka.integrations.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "lavka.accounts.middleware.UserLanguageMiddleware",
    "lavka.accounts.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "lavka.urls"
WSGI_APPLICATION = "lavka.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("LAVKA_DATABASE_URL", "") or f"sqlite:///{VAR_DIR / 'lavka.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: a writing transaction takes the lock at BEGIN, so two writers queue
        # instead of failing with "database is locked" half-way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compiling pays off only for long analytical scans; for the short queries that make up almost all
    # of the work it costs more than it saves (about 150 ms on a segment count).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES["default"].setdefault("TEST", {})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "orders:my_work"
LOGOUT_REDIRECT_URL = "accounts:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = os.environ.get("LAVKA_TIME_ZONE", "Europe/Moscow")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it even when serving from finders
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served from the installed packages straight away; no collectstatic step for the embedded server.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REDIS_URL = os.environ.get("LAVKA_REDIS_URL", "")
# With LAVKA_REDIS_URL, outbox events and jobs also go through Redis streams named <prefix>:events and
# <prefix>:jobs (lavka.core.redisq); the sweeper re-publishes what has waited longer than SWEEP_SECONDS.
LAVKA_REDIS_PREFIX = os.environ.get("LAVKA_REDIS_PREFIX", "lavka")
LAVKA_REDIS_SWEEP_SECONDS = float(os.environ.get("LAVKA_REDIS_SWEEP_SECONDS", "5"))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SESSION_COOKIE_SECURE = env_bool("LAVKA_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Login: this many failures per username or per client address in the window locks it for the window.
LAVKA_LOGIN_MAX_FAILURES = env_int("LAVKA_LOGIN_MAX_FAILURES", 5)
LAVKA_LOGIN_WINDOW_SECONDS = env_int("LAVKA_LOGIN_WINDOW_SECONDS", 300)

# Outbox dispatcher.
LAVKA_OUTBOX_LEASE_SECONDS = env_int("LAVKA_OUTBOX_LEASE_SECONDS", 60)
# How long a claimed job is a worker's before another may take it over (a worker that died).
LAVKA_JOB_LEASE_SECONDS = env_int("LAVKA_JOB_LEASE_SECONDS", 300)
LAVKA_OUTBOX_BATCH = env_int("LAVKA_OUTBOX_BATCH", 50)
# Automation: how deep a chain of rules triggering rules may go, and how often timers and waits are checked.
LAVKA_AUTOMATION_MAX_DEPTH = env_int("LAVKA_AUTOMATION_MAX_DEPTH", 5)
LAVKA_AUTOMATION_TICK_SECONDS = env_int("LAVKA_AUTOMATION_TICK_SECONDS", 15)
# Runs whose condition was false say why a rule did not fire; after this many days they are pruned.
LAVKA_AUTOMATION_KEEP_SKIPPED_RUNS_DAYS = env_int("LAVKA_AUTOMATION_KEEP_SKIPPED_RUNS_DAYS", 30)

# Analytics: how long the owner's dashboard reuses its figures; "bought together" thresholds and refresh.
LAVKA_DASHBOARD_CACHE_SECONDS = env_int("LAVKA_DASHBOARD_CACHE_SECONDS", 900)
LAVKA_CROSSSELL_MIN_ORDERS = env_int("LAVKA_CROSSSELL_MIN_ORDERS", 3)
LAVKA_CROSSSELL_REFRESH_SECONDS = env_int("LAVKA_CROSSSELL_REFRESH_SECONDS", 6 * 3600)
LAVKA_WORKER_POLL_SECONDS = float(os.environ.get("LAVKA_WORKER_POLL_SECONDS", "1.0"))
# A diagnostic receiver that logs every delivery of every event; durability tests switch it on.
LAVKA_EVENT_TRACE = env_bool("LAVKA_EVENT_TRACE")

# API v5: requests per second per key (0 turns the limit off), as retailCRM's clients expect.
LAVKA_API_RATE_LIMIT = env_int("LAVKA_API_RATE_LIMIT", 10)
LAVKA_API_TELEPHONY_RATE_LIMIT = env_int("LAVKA_API_TELEPHONY_RATE_LIMIT", 40)
# How long a process trusts a key it has looked up (a revocation reaches other processes in this time).
LAVKA_API_KEY_CACHE_SECONDS = env_int("LAVKA_API_KEY_CACHE_SECONDS", 5)

# Outgoing webhooks (see lavka/integrations/webhooks/conf.py for what each one means).
LAVKA_WEBHOOK_MAX_FAILURES = env_int("LAVKA_WEBHOOK_MAX_FAILURES", 20)
LAVKA_WEBHOOK_MAX_ATTEMPTS = env_int("LAVKA_WEBHOOK_MAX_ATTEMPTS", 30)
LAVKA_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("LAVKA_WEBHOOK_TIMEOUT_SECONDS", "10"))
LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS = float(os.environ.get("LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS", "10"))
LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS = float(os.environ.get("LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS", "3600"))

# Tasks: reminders also by e-mail to staff; an overdue task goes to the supervisor after this many
# minutes; how often the worker looks for due reminders, overdue tasks and escalations.
LAVKA_TASK_REMINDER_EMAIL = env_bool("LAVKA_TASK_REMINDER_EMAIL")
LAVKA_TASK_ESCALATION_MINUTES = env_int("LAVKA_TASK_ESCALATION_MINUTES", 60)
LAVKA_TASK_TICK_SECONDS = env_int("LAVKA_TASK_TICK_SECONDS", 30)
# Staff e-mail (task reminders) goes through this SMTP server.
EMAIL_HOST = os.environ.get("LAVKA_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("LAVKA_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("LAVKA_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("LAVKA_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("LAVKA_EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("LAVKA_EMAIL_FROM", "lavka@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LAVKA_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
