"""Local development: `make run`. Same as the base, with DEBUG only when asked (`DEBUG=1 make
run`): Django's debug page shows settings and code to whoever triggers an error."""

from .base import *  # noqa: F403
from .base import envbool

DEBUG = envbool("DEBUG", "false")
