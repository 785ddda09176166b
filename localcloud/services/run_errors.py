"""The error a Cloud Run or Scheduler handler raises; the service turns it into an AIP-193 body."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
