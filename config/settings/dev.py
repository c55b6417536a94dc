"""Local development: `make run`. Same as production but for DEBUG and relaxed hosts."""

from .base import *  # noqa: F403
from .base import envbool

DEBUG = envbool("DEBUG", "true")
