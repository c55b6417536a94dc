"""One Redis connection pool per process for what is not a cache: the near-duplicate index."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def redis_client() -> redis.Redis:
    # Keyed on the URL so tests that override REDIS_URL get their own pool.
    return _client(settings.REDIS_URL)
