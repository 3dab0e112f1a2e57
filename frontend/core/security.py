"""Bearer-token checks and the signatures of download links on local storage.

Cloud buckets sign their own download URLs. On one machine the API serves
downloads itself; when a token protects the API, those links carry an expiry
and an HMAC of the object key made with the token, so a browser `<img>` or a
plain `GET` of `output_url` works without an `Authorization` header.
"""

import hashlib
import hmac
import time
from urllib.parse import urlencode


def token_matches(given: str, token: str) -> bool:
    """Compare a presented token with the API's in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


def _signature(key: str, expires: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: str, expires_in: int, secret: str) -> str:
    """The query string that grants a download of `key` for `expires_in` seconds."""
    expires = int(time.time()) + expires_in
    return urlencode({"expires": expires, "signature": _signature(key, expires, secret)})


def signature_valid(key: str, expires: str | None, signature: str | None, secret: str) -> bool:
    """True when a download link for `key` was signed with `secret` and has not expired."""
    if not expires or not signature or not expires.isdigit():
        return False
    if int(expires) < time.time():
        return False
    return hmac.compare_digest(signature.encode(), _signature(key, int(expires), secret).encode())
