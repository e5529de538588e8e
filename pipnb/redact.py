"""Secrets out of every message: database URLs parsed once, shown with their secrets masked.

A database URL (``postgresql+psycopg://analyst:${PIPNB_DB_PASSWORD}@db.internal/crm?sslmode=require``) is
parsed once into its parts by :func:`parse_url`; what pipnb shows is rendered from those parts, never by
searching the text for a password. The password and the value of every query parameter whose key is not on
the allow-list of harmless keys (:data:`SAFE_QUERY_KEYS`: ``sslmode``, ``warehouse``, ...) are shown as
``***``; a value such as ``odbc_connect=DRIVER=...;PWD=...`` is masked whole. A URL that cannot be parsed
without guessing (a raw ``@`` in the path, a space in the host, ...) is never shown: only its scheme is.

:class:`Redactor` masks the secrets of known URLs in free text (a driver's error message), in every form a
driver or a file may spell them: as typed, percent-decoded, percent-encoded, JSON- or HTML-escaped, or as a
Python bytes literal; then it masks any other URL and any ``password=...`` it finds.

Example
-------
>>> show_url("postgresql+psycopg://analyst:p%40ss@db.internal:5432/crm?sslmode=require&pwd=x")
'postgresql+psycopg://analyst:***@db.internal:5432/crm?sslmode=require&pwd=***'
>>> show_url("postgresql://analyst:p@ss/w@db.internal/crm")        # ambiguous: never printed
'postgresql://***'
>>> redact = Redactor()
>>> redact.add("S3cr3t!")
>>> redact("connection failed for password 'S3cr3t!' (dsn=pg://u:S3cr3t%21@h/db)")
"connection failed for password '***' (dsn=pg://u:***@h/db)"
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

__all__ = ["MASK", "SAFE_QUERY_KEYS", "ParsedUrl", "Redactor", "parse_url", "redact_text", "show_url"]

#: What a secret is replaced by.
MASK = "***"

#: Query keys (compared in lower case) whose values are shown: settings, never credentials.
SAFE_QUERY_KEYS = frozenset({
    "sslmode", "charset", "encoding", "client_encoding", "driver", "warehouse", "role", "schema", "database",
    "db", "dbname", "application_name", "connect_timeout", "timeout", "login_timeout", "mode", "uri",
    "read_only", "readonly", "port", "trustservercertificate", "encrypt", "account", "region", "location",
    "project", "dataset", "catalog", "target_session_attrs", "gssencmode", "autocommit", "isolation_level",
    "cache", "immutable", "check_same_thread", "protocol", "arraysize", "tds_version", "ansi",
    "unicode_results", "server", "uid", "user", "authentication",
})

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)\Z", re.DOTALL)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]*)(?::([0-9]*|\$\{[A-Za-z_][A-Za-z0-9_]*\}))?\Z")
_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}\Z")
# A URL inside free text: up to white space or a quote (a driver may quote its DSN).
# Punctuation closing a sentence (``...crm.db: no such file``) is not part of it.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*?(?=[:,.;)]*(?:[\s'\"<>]|\Z))")
# A key written in a path (/etc/passwd in "/etc/passwd: is not ...") is not a key: no / \ or . before it.
_KEY_VALUE = re.compile(r"(?i)(?<![/\\.])\b(password|passwd|pwd|pass|secret|token|api[_-]?key|private[_-]?key)"
                        r"(\s*[=:]\s*)"
                        r"(\"[^\"]*\"|'[^']*'|[^\s;,&)'\"]+?(?=[:.]*(?:[\s;,&)'\"]|\Z)))")


@dataclass(frozen=True)
class ParsedUrl:
    """A URL parsed once: how to show it, and the secret values in it.

    Attributes
    ----------
    scheme
        ``postgresql+psycopg``, ``sqlite``, ...
    username, password
        Percent-decoded; None when absent.
    host
        Host and port as written (``db.internal:5432``), ``""`` for none.
    path
        The part after the host's ``/`` (the database), as written; None when there is no ``/``.
    query
        ``(key, value)`` pairs as written.
    """

    scheme: str
    username: str | None
    password: str | None
    host: str
    path: str | None
    query: tuple[tuple[str, str], ...]

    @property
    def shown(self) -> str:
        """The URL with the password and every query value not on :data:`SAFE_QUERY_KEYS` as ``***``."""
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="${}") + (f":{MASK}" if self.password is not None else "") + "@"
        text = f"{self.scheme}://{auth}{self.host}"
        if self.path is not None:
            text += f"/{self.path}"
        if self.query:
            text += "?" + "&".join(f"{k}={v if _safe_key(k) else MASK}" for k, v in self.query)
        return text

    @property
    def credentials(self) -> list[str]:
        """The literal credentials: the password, the values of the query keys that are not on the allow-list
        and, in a connection string such as ``odbc_connect``, the values of its keys that are not either
        (``${VARIABLE}`` references are not credentials)."""
        values = [self.password] if self.password else []
        for key, value in self.query:
            if _safe_key(key) or not value:
                continue
            decoded = unquote_plus(value)
            pairs = _pairs(decoded)
            values += [v for k, v in pairs if not _safe_key(k)] if pairs else [decoded]
        return [v for v in values if v and not _VARIABLE.match(v)]

    @property
    def secrets(self) -> list[str]:
        """What must never be shown: :attr:`credentials`, and every masked query value whole."""
        whole = [v for k, v in self.query if v and not _safe_key(k) and not _VARIABLE.match(unquote_plus(v))]
        return [*self.credentials, *whole, *(unquote_plus(v) for v in whole)]

    def agrees(self, username: str | None, password: str | None, host: str | None, port: int | None) -> bool:
        """Whether another parser (SQLAlchemy's) read the same user, password, host and port."""
        where = (host or "") if ":" not in (host or "") else f"[{host}]"
        where += f":{port}" if port is not None else ""
        return (self.username or None, self.password, self.host) == (username or None, password, where)


def parse_url(text: str) -> ParsedUrl | None:
    """Parse a database URL (``scheme://[user[:password]@]host[:port][/path][?query]``), or None.

    The password may hold ``:``, ``/``, ``?``, ``#``, spaces and unicode as typed; a ``@`` in it is taken as
    part of it up to the last ``@`` before the host. Anything that leaves a doubt (a ``@`` left in the path,
    a space or a bracket in the host, a port that is not a number) makes the URL unparseable: None.
    """
    match = _SCHEME.match(str(text))
    if not match:
        return None
    scheme, rest = match.groups()
    username = password = None
    first_at = rest.find("@")
    if first_at >= 0:
        boundary = _first_of(rest, "/?#", first_at)
        at = rest.rfind("@", 0, boundary)
        userinfo, rest = rest[:at], rest[at + 1:]
        user, colon, secret = userinfo.partition(":")
        if "/" in user:
            return None
        username, password = unquote(user), (unquote(secret) if colon else None)
    end = _first_of(rest, "/?#", 0)
    host, tail = rest[:end], rest[end:]
    if not _HOST.match(host) or tail.startswith("#"):
        return None
    path = None
    if tail.startswith("/"):
        path, _, query_text = tail[1:].partition("?")
        if "@" in path or "#" in path:
            return None
    else:
        query_text = tail[1:]
    query = tuple((k, v) for k, _, v in (part.partition("=") for part in query_text.split("&")) if k)
    return ParsedUrl(scheme, username, password, host, path, query)


def show_url(text: str) -> str:
    """``text`` as it may be shown: secrets masked, or only ``scheme://***`` when it cannot be parsed."""
    parsed = parse_url(text)
    if parsed is not None:
        return parsed.shown
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*)://", str(text))
    return f"{match.group(1)}://{MASK}" if match else MASK


class Redactor:
    """Masks known secrets, then any URL and any ``password=...`` left, in free text.

    Example
    -------
    >>> r = Redactor()
    >>> r.add_url("mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BPWD%3Ds3cr3t%3B")
    >>> r("[ODBC] login failed; PWD=s3cr3t;")
    '[ODBC] login failed; PWD=***;'
    """

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        """Mask these values (and every way a message may spell them)."""
        for value in values:
            if value:
                self._secrets.update(form for form in _spellings(value) if form)

    def add_url(self, text: str) -> None:
        """Mask the secrets of a URL; an unparseable URL is masked whole (everything after ``://``)."""
        parsed = parse_url(text)
        if parsed is not None:
            self.add(*parsed.secrets)
        else:
            self.add(str(text).partition("://")[2] or str(text))

    def __call__(self, message: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            message = message.replace(secret, MASK)
        return redact_text(message)


def redact_text(message: str) -> str:
    """Mask what looks like a secret in free text: every URL is re-shown by :func:`show_url`, and the value
    of ``password=``, ``pwd=``, ``token=`` ... (as a connection string or a driver writes them)."""
    message = _URL_IN_TEXT.sub(lambda m: show_url(m.group(0)), str(message))
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", message)


# -- helpers ------------------------------------------------------------------------------------------------
def _safe_key(key: str) -> bool:
    return unquote_plus(key).strip().lower() in SAFE_QUERY_KEYS


def _first_of(text: str, chars: str, start: int) -> int:
    hits = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(hits) if hits else len(text)


def _pairs(text: str) -> list[tuple[str, str]]:
    """``KEY=value`` pairs of a connection string (``DRIVER={...};PWD=...;``)."""
    if "=" not in text:
        return []
    return [(k.strip(), v.strip().strip("{}")) for k, _, v in (p.partition("=") for p in text.split(";")) if v]


def _spellings(value: str) -> set[str]:
    """The ways a message or a file may spell ``value``."""
    decoded = unquote(value)
    forms = {value, decoded}
    for v in (value, decoded):
        forms |= {quote(v, safe=""), quote_plus(v), quote(v, safe="/:@"), json.dumps(v)[1:-1],
                  json.dumps(v, ensure_ascii=False)[1:-1], html.escape(v), html.escape(v, quote=False),
                  repr(v.encode())[2:-1], repr(v)[1:-1]}
    return forms
