"""Planner statistics kept fresh by the product itself, whatever the server's autovacuum does.

PostgreSQL plans every query on the statistics ANALYZE last gathered. Autovacuum refreshes them
when a table has changed by ``autovacuum_analyze_threshold + autovacuum_analyze_scale_factor *
reltuples`` rows, but it is off on some servers (bulk-load setups, some managed plans, this
project's benchmark machine), and then a table that grew from nothing keeps the statistics of
its first rows: the idempotency lookups of ingest slowed from 7.7-8.6k to 2.2-4.0k items/s over
100k items that way (issue 16). ``tables_analyze_stale`` applies autovacuum's own rule from a
Celery beat task and after large imports: one catalog query, and an ANALYZE (a bounded sample of
300 x default_statistics_target rows, whatever the table's size) only for a table that needs it.
"""

import logging
import time

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key: one run at a time across workers (two ANALYZEs of the same table
# queue on its SHARE UPDATE EXCLUSIVE lock, and the second would only repeat the first).
ADVISORY_LOCK_KEY = 0x5347_414E  # "SGAN"

STALE_TABLES_SQL = """
SELECT s.relname
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND s.n_mod_since_analyze >= %s + %s * GREATEST(s.n_live_tup, c.reltuples, 0)
ORDER BY s.n_mod_since_analyze DESC
"""


def tables_stale(*, min_changes: int | None = None, share: float | None = None) -> list[str]:
    """Tables of the current schema changed by at least ``min_changes + share * rows`` rows since
    they were last analyzed (by anyone), most changed first. Empty on a database other than
    PostgreSQL (SQLite's planner keeps no such statistics to go stale)."""
    if connection.vendor != "postgresql":
        return []
    if min_changes is None:
        min_changes = settings.SYNTHGATE_ANALYZE_MIN_CHANGES
    if share is None:
        share = settings.SYNTHGATE_ANALYZE_SHARE
    with connection.cursor() as cursor:
        # The cumulative statistics are read as one snapshot per transaction; drop it so a
        # caller inside a transaction sees the counts as they are now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(STALE_TABLES_SQL, [min_changes, share])
        return [name for (name,) in cursor.fetchall()]


def tables_analyze_stale(
    *, min_changes: int | None = None, share: float | None = None
) -> list[str]:
    """ANALYZE each table past the threshold of ``tables_stale``; returns their names. Returns
    ``[]`` at once when another run holds the lock (it is doing the same work). Safe to run
    twice: ANALYZE resets ``n_mod_since_analyze``, so the second run finds nothing to do."""
    if connection.vendor != "postgresql":
        return []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return []
        try:
            names = tables_stale(min_changes=min_changes, share=share)
            for name in names:
                start = time.perf_counter()
                cursor.execute(f"ANALYZE {quote(name)}")
                logger.info("analyzed %s in %.0f ms", name, (time.perf_counter() - start) * 1000)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    return names
