"""A minimal Django 5.2 + DRF + simplejwt project with the settings signet's compat routes imitate:
DRF's default parsers, simplejwt with ROTATE_REFRESH_TOKENS and BLACKLIST_AFTER_ROTATION on,
rest_framework.authtoken for obtain_auth_token. SQLite in REFPROJECT_DB (a temp file)."""
import os

SECRET_KEY = "differential-test-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_simplejwt.token_blacklist",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "refproject.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("REFPROJECT_DB", "/tmp/refproject.sqlite3"),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Fast hashing: the test compares answers, not password storage.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SIMPLE_JWT = {
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}
