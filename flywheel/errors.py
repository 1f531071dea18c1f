"""Domain errors raised by services. Views and the API turn them into clear 4xx answers."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or type(self).__name__.lower()


class InvalidInput(DomainError):
    status = 400


class PermissionDeniedError(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409
