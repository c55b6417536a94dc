"""Production: every secret comes from the environment; refuse to start without one."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import envbool, envint

if "SECRET_KEY" not in os.environ:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
SESSION_COOKIE_SECURE = envbool("SYNTHGATE_SECURE_COOKIES", "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Behind a TLS-terminating proxy (nginx, a load balancer) that sets X-Forwarded-Proto: Django
# then knows a request came over https (secure cookies, CSRF origin checks, redirects). Only
# correct when the proxy overwrites that header on every request; set
# SYNTHGATE_BEHIND_TLS_PROXY=false when Django terminates TLS itself or the header is not set
# by a proxy you control.
if envbool("SYNTHGATE_BEHIND_TLS_PROXY", "true"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SYNTHGATE_SSL_REDIRECT", "true")
# /healthz is probed over plain HTTP by load balancers and monitors on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS: browsers use https only for this host for a year (start lower, e.g. 3600, when first
# enabling TLS on a host: a mistake is cached by every browser for the whole period).
SECURE_HSTS_SECONDS = envint("SYNTHGATE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SYNTHGATE_HSTS_SUBDOMAINS", "true")
SECURE_HSTS_PRELOAD = envbool("SYNTHGATE_HSTS_PRELOAD", "false")
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not SECURE_HSTS_PRELOAD:
    # Preloading is a promise to browsers that cannot be taken back quickly: opt in, not out.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
