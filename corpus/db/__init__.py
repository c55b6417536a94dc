"""The database engine room: the SQL the services would rather not spell themselves.

- ``bulk``: ``bulk_insert`` (COPY on PostgreSQL) and ``values_in`` (array lookups);
- ``copy``: ``copy_rows``, the one COPY writer (items, scores, audit events, export selections);
- ``arrays``: many values as one parameter (array literals, ``unnest``);
- ``rows``: model instances from the rows of hand-written SQL;
- ``batch``: statements that share a round trip (``StatementBatch``), and what PostgreSQL and
  SQLite spell differently (``for_update``, ``id_array``).

It imports models only, never a service: the services build on it.
"""
