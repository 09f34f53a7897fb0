"""Rate limits kept in Redis as one counter per caller and window: a single INCR per request
(DRF's default throttles read and rewrite a growing list of timestamps instead)."""

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import throttling

from windflow.clientaddress import client_address
from windflow.hotcache import redis_client

logger = logging.getLogger(__name__)


class FixedWindowThrottle(throttling.SimpleRateThrottle):
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        window = int(time.time() // self.duration)
        key = f"throttle:{self.scope}:{ident}:{window}"
        self.window_end = (window + 1) * self.duration
        try:
            pipeline = redis_client("default").pipeline()
            pipeline.incr(key)
            pipeline.expire(key, self.duration + 1)
            count, _ = pipeline.execute()
        except (RedisConnectionError, RedisTimeoutError):
            # Redis away for a moment: serve the API rather than refuse it (the sign-in
            # lockout, which guards passwords, still needs Redis and answers 503).
            logger.warning("API throttle skipped: Redis unavailable")
            return True
        return count <= self.num_requests

    def wait(self):
        return max(0.0, self.window_end - time.time())

    def get_ident(self, request):
        """The client's address as windflow.clientaddress computes it: X-Forwarded-For only
        through WINDFLOW_TRUSTED_PROXIES (DRF's own reading takes the raw header)."""
        return client_address(request) or "unknown"


class UserRateThrottle(FixedWindowThrottle):
    """Per signed-in user (all their tokens together); anonymous callers are AnonRateThrottle's."""

    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return f"u{request.user.pk}"
        return None


class AnonRateThrottle(FixedWindowThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return f"ip{self.get_ident(request)}"
