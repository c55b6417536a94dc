"""Request types for views: what the middleware adds to Django's request, spelled for mypy."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (django-htmx docs, "Type checking").
    Only for annotations: the object is Django's own request."""

    htmx: HtmxDetails
