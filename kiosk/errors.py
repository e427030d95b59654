"""One error tree for the core. Each class's docstring is the message a person sees.

Callers catch broadly (`KioskError`) or narrowly (`HubUnavailable` sends the service
down the offline path). The CLI maps these to a message and an exit code.
"""
from __future__ import annotations

import math


class KioskError(Exception):
    """Something went wrong."""

    def __init__(self, detail: str = "", *, problem_type: str = "", status: int | None = None,
                 members: dict | None = None) -> None:
        super().__init__(detail or (self.__doc__ or "").strip())
        self.detail = detail or (self.__doc__ or "").strip()
        self.problem_type = problem_type
        self.status = status
        # the RFC 9457 extension members of the hub's problem (api.M_*); {} from a hub that sends none
        self.members = dict(members or {})

    def number(self, name: str) -> float | None:
        """Extension member `name` as a finite number >= 0, or None (absent or not a number).
        Numbers are read from members only, never from the human `detail`."""
        value = self.members.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        value = float(value)
        return value if math.isfinite(value) and value >= 0 else None


class ConfigError(KioskError):
    """The kiosk configuration is invalid."""


class NotEnrolled(KioskError):
    """This kiosk is not enrolled with a hub yet: run `kiosk enroll` or use the technician screen."""


class HubError(KioskError):
    """The hub refused the request."""


class HubUnavailable(HubError):
    """The hub cannot be reached right now (network down, timeout, or hub overloaded)."""

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kw) -> None:
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class HubProtocolError(HubError):
    """The hub answered something that is not the documented API."""


class Unauthorized(HubError):
    """The hub did not accept this kiosk's device token: re-enroll the kiosk."""


class DeviceRevoked(Unauthorized):
    """This kiosk was removed from the fleet: enroll it again."""


class Forbidden(HubError):
    """The hub does not allow this kiosk to do that."""


class NotFound(HubError):
    """The hub does not know that."""


class UnknownCredential(NotFound):
    """This card or phone is not registered."""


class CredentialRefused(HubError):
    """This card or phone could not be verified (copied card or replayed answer)."""


class EnrollmentRefused(HubError):
    """The enrollment code was not accepted: check it and ask for a new one if it was used."""


class InvalidRequest(HubError):
    """The hub refused the request as invalid."""


class StorageError(KioskError):
    """The kiosk could not write to its local storage."""


class DiskFull(StorageError):
    """The kiosk's disk is full: free space or call a technician."""
