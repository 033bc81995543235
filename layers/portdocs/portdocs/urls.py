"""URLs a document travels to, and text that must not carry them: the https check, the upload
host allow-list, and the redaction of echoed Locations (bearer links to a file) from reasons."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, quote_plus, unquote, unquote_plus, urlsplit

from portdocs.errors import PermanentError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def secure_url(url: str) -> SplitResult:
    """The URL's parts, once it is https (plain http only to a loopback host: local runs) and
    carries no credentials: what every URL a document or a credential travels to must be.

    Reasons name the scheme and host at most, never the path: a Location is a bearer link to the
    file, and reasons reach logs, tags and the ledger."""
    try:
        # urlsplit raises on an unbalanced "[" or a netloc that NFKC normalisation changes.
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise PermanentError(f"the URL is malformed: {error}") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise PermanentError("the URL has no host")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        raise PermanentError(f"the URL must use https, not {parts.scheme or 'no scheme'!r} (host {host!r})")
    if parts.username or parts.password:
        raise PermanentError("URL must not carry user credentials")
    return parts


def check_url_allowed(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """Refuses URLs that are not secure (secure_url) or whose host is outside the allow-list."""
    parts = secure_url(url)
    host, port = (parts.hostname or "").lower(), parts.port
    candidates = {host} if port is None else {f"{host}:{port}"}
    if port is None or port == {"https": 443, "http": 80}.get(parts.scheme):
        candidates.add(host)
    if not candidates & set(allowed_hosts):
        raise PermanentError(
            f"URL host {parts.netloc!r} is not in ALLOWED_UPLOAD_HOSTS ({', '.join(allowed_hosts)})"
        )


# A URL as is, JSON-escaped (https:\/\/), percent-encoded once or twice (https%3A%2F%2F): scheme,
# host, rest. Wherever it starts: a URL may be glued to what precedes it ("id_https://", "%3Dhttps").
_URL_PATH = re.compile(r"(?i)(https?)(?::|%3A|%253A)(?:\\?/|%2F|%252F){2}([^\s/\\?#%\"'<>]+)[^\s\"'<>]*")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# A secret shorter than this would match ordinary words ("loa", "the").
_SHORTEST_SECRET = 8


def _unescaped(text: str) -> str:
    """Text as a reader would see it: HTML entities (&#x2F;) and JSON's \\u escapes (\\u002F) decoded."""
    # Imported here, not at the top: its entity table would cost every cold start, for error text.
    import html

    return _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), html.unescape(text))


def without_url_paths(text: str) -> str:
    """A reason for people and systems to read: any URL in it (Telnyx may echo the Location, a
    bearer link to the file) keeps its scheme and host only, in whichever form it was echoed."""
    return _URL_PATH.sub(r"\1://\2/…", _unescaped(text))


def redacted(text: str, *secrets: str) -> str:
    """Text from a server, without any of `secrets` (a URL it was sent, an object key) in the forms
    an echo takes: as is, percent-encoded or decoded (+ or %20 for a space, once or twice), or
    JSON-escaped. Each segment of a secret's path counts on its own: the random one (direct-uploads/
    <uuid>/...) is what makes a Location a bearer link, and it survives any encoding. Then
    without_url_paths, for URLs it was not sent."""
    values = set()
    for secret in secrets:
        path = urlsplit(secret).path if secret.lower().startswith(("http://", "https://")) else secret
        once, twice = unquote_plus(path), unquote_plus(unquote_plus(path))
        for value in (secret, path.lstrip("/"), once.lstrip("/"), *once.split("/"), *twice.split("/")):
            values |= {value, unquote(value), unquote_plus(value), quote(value, safe=""), quote(value)}
            values |= {quote_plus(value), quote(quote(value, safe=""), safe="")}
    values = {v for v in values if len(v) >= _SHORTEST_SECRET}
    text = _unescaped(text)
    for value in sorted(values | {v.replace("/", "\\/") for v in values}, key=len, reverse=True):
        text = text.replace(value, "…")
    return without_url_paths(text)
