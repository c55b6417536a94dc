"""Request types for views: what the middleware adds to Django's request, spelled for mypy."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (django-htmx docs, "Type checking").
    Only for annotations: the object is Django's own request."""

    htmx: HtmxDetails


class UserHttpRequest(HtmxHttpRequest):
    """A request of a signed-in user: what a view behind ``login_required`` (or review's
    ``login_needed``) receives. Only for annotations."""

    user: User
