"""The protocol's one exception hierarchy: every parser and verifier raises only these."""


class ProtocolError(Exception):
    """Base class of every error the protocol core raises on bad input."""


class BadLength(ProtocolError):
    """A field or message does not have the length the specification gives it."""


class BadFormat(ProtocolError):
    """A field is well sized but malformed (not base64, not a key, not a known code...)."""


class BadMac(ProtocolError):
    """A MAC or an authentication tag does not verify."""


class StaleTime(ProtocolError):
    """A time field is outside the tolerance allowed around the reference time."""


class EpochMismatch(ProtocolError):
    """The epoch inside a decrypted EBID is not the epoch the message claims."""


class UnknownCountry(ProtocolError):
    """The decrypted country code is neither ours nor a federated country's."""


class KeyUnavailable(ProtocolError):
    """No server key exists for the day of the requested epoch (too old or too far ahead)."""
