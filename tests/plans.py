"""Reading PostgreSQL's plans in tests: how many rows a query really reads."""

import json
from typing import Any

from django.db import connection


def plan_rows_read(sql: str, params: Any = None) -> int:
    """Run the query under ``EXPLAIN ANALYZE`` and return the most rows any step of its plan
    produced or filtered out (rows per loop times loops, plus those a filter removed)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        [[plan]] = cursor.fetchall()
    if isinstance(plan, str):
        plan = json.loads(plan)

    def walk(node: dict[str, Any]) -> int:
        here = node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        return max([here, *(walk(child) for child in node.get("Plans", []))])

    return walk(plan[0]["Plan"])
