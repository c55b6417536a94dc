import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
application = get_wsgi_application()

# Keep the application's own objects out of the garbage collector's way (bench/RESULTS.md,
# "Ingest over HTTP"). An ingest request builds tens of thousands of container objects, which
# triggers about 27 collections per request, and every older-generation pass walked the whole
# application as well (Django, DRF, pydantic: 130,000 tracked objects): 19 ms of CPU in a request
# of 75 ms. So the views are loaded now (the URL conf imports them all, as the first request
# would), and everything alive at that point, module-level state that is never garbage, is moved
# to the permanent generation (gc.freeze), which collections skip: 3 ms per request remain.
# Raising the thresholds as well saved about 1 ms more but kept garbage longer: +10 to 20 MB of
# peak RSS over two workers.
get_resolver().url_patterns  # noqa: B018 - imports every view module
gc.collect()
gc.freeze()
