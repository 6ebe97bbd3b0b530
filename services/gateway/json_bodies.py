"""The strict JSON body check now lives in the shared runtime (each service runs it); kept for existing imports."""

from services.runtime.json_bodies import BODY_HEADER, JsonBodyChecker

__all__ = ["BODY_HEADER", "JsonBodyChecker"]
