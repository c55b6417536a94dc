"""Production: every secret comes from the environment; refuse to start without one."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import envbool

if "SECRET_KEY" not in os.environ:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
SESSION_COOKIE_SECURE = envbool("SYNTHGATE_SECURE_COOKIES", "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
