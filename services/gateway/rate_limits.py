"""The rate-limit port now lives in the shared runtime (services enforce it too); kept for existing imports."""

from services.runtime.rate_limits import Buckets, MemoryBuckets, RateLimiter, RedisBuckets, open_buckets

__all__ = ["Buckets", "MemoryBuckets", "RateLimiter", "RedisBuckets", "open_buckets"]
