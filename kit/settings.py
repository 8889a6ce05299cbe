"""One typed, frozen settings object per service: defaults, then ``<PREFIX>_<NAME>`` environment
variables, then command-line flags.

A service declares a frozen dataclass deriving from ``ServiceSettings`` with one ``setting()``
per field; ``add_arguments`` gives each field a flag (in an argument group of its own, so a
command's own options come first in ``--help``), ``from_sources`` builds and validates it, and
``describe`` prints it for the start-up log with secrets and URL credentials masked::

    @dataclass(frozen=True, slots=True)
    class Settings(ServiceSettings):
        ENV_PREFIX: ClassVar[str] = "SIDEP_"
        TITLE: ClassVar[str] = "SI-DEP"
        port: int = setting(8082, "TCP port to listen on")
        pseudonym_key: str = setting("", "HMAC key of pseudonyms", secret=True)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

MASK = "***"


class SettingsError(ValueError):
    """A setting that cannot work; the message names it."""


def setting(default: Any, help: str, *, secret: bool = False, choices: tuple[str, ...] = ()) -> Any:
    """A settings field: its default, its help line, whether it is a secret (masked when
    printed), and the values it may take."""
    return dataclasses.field(
        default=default,
        repr=not secret,
        metadata={"help": help, "secret": secret, "choices": choices},
    )


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def mask_url(value: str) -> str:
    """A URL with its credentials replaced by ``***`` (``scheme://***@host/...``); every URL
    of a list (``redis://:pw@a,redis://:pw@b``) alike."""
    return _URL_CREDENTIALS.sub(rf"\g<scheme>{MASK}@", value)


class ServiceSettings:
    """Base of every service's settings dataclass (which must be a frozen dataclass).

    Its ``repr`` masks as ``describe`` does (a secret field is left out, as ``setting`` asks;
    credentials in URLs become ``***``): a settings object in a log line, a traceback's locals
    or a debugger never shows a password."""

    ENV_PREFIX: ClassVar[str] = ""
    """Prefix of the environment variables, e.g. ``ROBERT_`` or ``SIDEP_``."""
    TITLE: ClassVar[str] = "service"
    """How ``--help`` names the group of these settings."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # @dataclass writes its own __repr__ unless the class defines one: give each subclass
        # the masking one before the decorator runs.
        cls.__repr__ = ServiceSettings._masked_repr  # type: ignore[assignment,method-assign]

    def _masked_repr(self) -> str:
        parts = [
            f"{f.name}={_masked(f, getattr(self, f.name))!r}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.repr
        ]
        return f"{type(self).__qualname__}({', '.join(parts)})"

    @classmethod
    def beside(cls, data_dir: str) -> Self:
        """The settings from the environment, the data directory ``data_dir`` unless the
        service's own ``<PREFIX>DATA_DIR`` says otherwise: how ``robert dev`` puts every
        service's data beside the ROBERT server's. The service must have a ``data_dir``."""
        return cls.from_sources(None, {cls.env_name("data_dir"): data_dir, **os.environ})

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The environment variable of a field."""
        return cls.ENV_PREFIX + field_name.upper()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, in a group of its own, each help naming its variable."""
        group = parser.add_argument_group(
            f"{cls.TITLE} settings",
            f"each also from its {cls.ENV_PREFIX}* environment variable; flags win",
        )
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            flag = "--" + f.name.replace("_", "-")
            shown = MASK if f.metadata["secret"] and f.default else repr(f.default)
            text = f"{f.metadata['help']} [{cls.env_name(f.name)}, default: {shown}]"
            choices = f.metadata["choices"] or None
            if _type_name(f.type) == "bool":
                group.add_argument(
                    flag,
                    dest=f.name,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=text,
                )
            else:
                group.add_argument(
                    flag,
                    dest=f.name,
                    default=None,
                    help=text,
                    type=_parser_of(f.type),
                    choices=choices,
                    metavar=f.name.upper(),
                )

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> Self:
        """Defaults, overridden by environment variables, overridden by flags; validated.

        Raises ``SettingsError`` naming the setting that cannot work."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = environ.get(cls.env_name(f.name))
            if raw is not None:
                try:
                    values[f.name] = _parser_of(f.type)(raw)
                except ValueError as exc:
                    raise SettingsError(f"{cls.env_name(f.name)}: {exc}") from None
                choices = f.metadata["choices"]
                if choices and values[f.name] not in choices:
                    raise SettingsError(
                        f"{cls.env_name(f.name)} must be one of {', '.join(choices)}"
                    )
            flag_value = getattr(args, f.name, None) if args is not None else None
            if flag_value is not None:
                values[f.name] = flag_value
        settings = cls(**values)
        try:
            settings.validate()
        except SettingsError:
            raise
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return settings

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting (override)."""

    def describe(self) -> str:
        """One ``name=value`` per setting for the start-up log; secrets and URL credentials
        masked."""
        return " ".join(
            f"{f.name}={_masked(f, getattr(self, f.name))}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )


def _masked(f: dataclasses.Field[Any], value: Any) -> Any:
    """A field's value as it may be shown: a secret as ``***``, a URL without credentials."""
    if f.metadata.get("secret") and value:
        return MASK
    return mask_url(value) if isinstance(value, str) else value


def check_port(name: str, port: int) -> None:
    """A TCP port setting must be 1-65535."""
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name} must be between 1 and 65535, not {port}")


def check_log_level(name: str, value: str) -> None:
    """A logging level setting must name one of the ``logging`` module's levels."""
    if value.upper() not in logging.getLevelNamesMapping():
        raise SettingsError(f"{name} must be a logging level, not {value!r}")


def check_origin(name: str, value: str) -> None:
    """An address setting that must be empty or an origin: http(s)://host[:port], no path."""
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise SettingsError(f"{name} must be an origin like https://robert.example.org (no path)")


def _type_name(type_: Any) -> str:
    return type_ if isinstance(type_, str) else type_.__name__


def _parser_of(type_: Any) -> Callable[[str], Any]:
    name = _type_name(type_)
    if name == "int":
        return integer
    if name == "float":
        return number
    if name == "bool":
        return parse_bool
    return str


def integer(value: str) -> int:
    """An integer, in decimal or with a 0x / 0o / 0b prefix."""
    try:
        return int(value, 0)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def number(value: str) -> float:
    """A decimal number."""
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def parse_bool(value: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, any case."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")
