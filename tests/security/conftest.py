"""Fixtures of the security tests: a real redis-server (tests/redisserver.py)."""

from tests.redisserver import redis_server  # noqa: F401 (fixture)
