"""The one factory of Redis clients: presence, the relay, rate limits and health checks.

Every client gives up on a Redis that does not answer within the same few seconds, so that a
hung or unreachable Redis holds no request for long: each user degrades instead (presence shows
Unknown, rate limits count in memory, the relay resubscribes, /healthz answers 503). None
retries with back-off inside redis-py, which would hold a request for seconds more.
"""

CONNECT_TIMEOUT = 2.0  # seconds to reach Redis
IO_TIMEOUT = 2.0  # seconds a command may wait for its answer


def options(retries: int = 0, **extra) -> dict:
    """Keyword arguments for ``redis.Redis`` (and its ``from_url``) with the common timeouts.

    ``retries``: immediate retries on a connection error (a pooled connection that a Redis
    restart closed is replaced at once).
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": IO_TIMEOUT,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), retries),
        **extra,
    }


def client(url: str, pool_size: int | None = None, retries: int = 0, **extra):
    """A ``redis.Redis`` for ``url``; with ``pool_size``, over a blocking pool of that many
    connections (callers beyond it wait for one instead of failing)."""
    import redis

    if pool_size is None:
        return redis.Redis.from_url(url, **options(retries, **extra))
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=10, **options(retries, **extra)
    )
    return redis.Redis(connection_pool=pool)
