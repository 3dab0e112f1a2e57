"""Bearer-token checks and the signatures of download links on local storage.

Cloud buckets sign their own download URLs. On one machine the API serves
downloads itself; when a token protects the API, those links carry an expiry
and an HMAC of the object key made with the token, so a browser `<img>` or a
plain `GET` of `output_url` works without an `Authorization` header.
"""

import hashlib
import hmac
import time
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

UNAUTHORIZED = "a valid bearer token is required (Authorization: Bearer <token>)"


def token_matches(given: str, token: str) -> bool:
    """Compare a presented token with the API's in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


def bearer_matches(headers: list[tuple[bytes, bytes]], token: str) -> bool:
    """True when raw ASGI `headers` carry `Authorization: Bearer <token>`."""
    value = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
    scheme, _, credentials = value.partition(" ")
    return scheme.lower() == "bearer" and bool(credentials) and token_matches(credentials, token)


def _signature(key: str, expires: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: str, expires_in: int, secret: str) -> str:
    """The query string that grants a download of `key` for `expires_in` seconds."""
    expires = int(time.time()) + expires_in
    return urlencode({"expires": expires, "signature": _signature(key, expires, secret)})


def is_ascii_number(value: str) -> bool:
    """True for ASCII digits only: `str.isdigit` also accepts '²', which `int` refuses."""
    return value.isascii() and value.isdigit()


def signature_valid(key: str, expires: str | None, signature: str | None, secret: str) -> bool:
    """True when a download link for `key` was signed with `secret` and has not expired."""
    if not expires or not signature or not is_ascii_number(expires):
        return False
    if int(expires) < time.time():
        return False
    return hmac.compare_digest(signature.encode(), _signature(key, int(expires), secret).encode())


def portal_policy(image_origins: Iterable[str]) -> str:
    """The portal's Content-Security-Policy: its own scripts, styles and API calls only (no inline
    code), images also from `image_origins` (where previews' links point), never framed."""
    images = " ".join(dict.fromkeys(["'self'", "data:", *image_origins]))
    return (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
