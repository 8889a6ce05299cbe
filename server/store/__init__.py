"""Storage backends behind one interface, chosen by URL (as bleak chooses its backend).

``sqlite:///abs/path.db`` or ``sqlite://relative.db`` gives the embedded SQLite store;
``redis://...`` or ``rediss://...`` the Redis store on one server;
``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://``) the same store on a
Redis Cluster (see ``server/store/redis.py`` for the query options ``shards``, ``wait``,
``wait_timeout_ms``). Backends are imported only when chosen.
"""

from __future__ import annotations

from server.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store"]


def open_store(url: str, pool_size: int | None = None, pool_wait: float | None = None) -> Store:
    """The store for ``url``, not yet opened (the caller awaits ``open()``). On Redis,
    ``pool_size`` connections at most, a request waiting ``pool_wait`` seconds at most for
    one (then the store call fails and the API answers 503)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("store URL has no scheme: use sqlite:///path.db, redis:// or rediss://")
    if scheme == "sqlite":
        if not rest:
            raise ValueError("sqlite store URL needs a path: sqlite:///abs/path.db")
        from server.store.sqlite import SqliteStore

        return SqliteStore(rest)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from server.store.redis import RedisStore

        return RedisStore(url, pool_size=pool_size, pool_wait=pool_wait)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: use sqlite:///path.db, redis://, rediss:// or "
        "redis+cluster://host:port[,host:port...]"
    )
