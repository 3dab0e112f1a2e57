"""Async calls of the kiosk API contract, retried on transient errors."""

import asyncio
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

TRANSIENT_STATUS = {429, 502, 503, 504}
FINAL_STATUSES = {"done", "failed"}


class KioskError(Exception):
    """The kiosk refused a request or could not be reached; the message says why."""


def zip_folder(folder: Path, target: Path, *, top_folder: bool = True) -> Path:
    """Zip `folder` (an OME-Zarr image) into `target`, under the folder's name (or at the zip's root,
    as `.ozx` files are); chunks are stored as they are (already compressed)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                inside = path.relative_to(folder).as_posix()
                archive.write(path, f"{folder.name}/{inside}" if top_folder else inside)
    return target


def normalize_url(url: str) -> str:
    """`127.0.0.1:8080` → `http://127.0.0.1:8080` (clients add the scheme), no trailing slash."""
    url = url.strip().rstrip("/")
    return url if url.startswith(("http://", "https://")) else f"http://{url}"


class KioskClient:
    """One kiosk. Transport errors and 429/5xx answers are retried `attempts` times with backoff."""

    def __init__(self, url: str, token: str | None = None, *, connections: int = 16,
                 timeout: float = 120, attempts: int = 5, backoff_seconds: float = 0.5) -> None:
        self.url = normalize_url(url)
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=True,
                                      limits=httpx.Limits(max_connections=connections))

    async def __aenter__(self) -> "KioskClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        for attempt in range(self.attempts):
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as error:
                problem = f"cannot reach {url}: {error or type(error).__name__}"
            else:
                if response.status_code not in TRANSIENT_STATUS:
                    return response
                problem = f"{url} answered {response.status_code}"
            if attempt + 1 < self.attempts:
                await asyncio.sleep(self.backoff_seconds * 2**attempt)
        raise KioskError(problem)

    async def _api(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs) -> dict:
        response = await self._request(method, f"{self.url}{path}", headers=self.auth, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code not in expect:
            raise KioskError(body.get("message") or f"{path} answered {response.status_code}")
        return body

    async def connect(self) -> None:
        """GET the host first, as DeepCell clients do, and follow its redirects (e.g. to https)."""
        response = await self._request("GET", f"{self.url}/")
        final = response.url
        self.url = f"{final.scheme}://{final.netloc.decode()}"
        await self._api("GET", "/api/health-check")

    async def models(self) -> dict[str, list[str]]:
        return (await self._api("GET", "/api/models"))["models"]

    async def upload(self, path: Path) -> str:
        """Upload a file, or an OME-Zarr folder zipped on the fly as `<folder>.zip`; returns its
        storage key (`uploads/…`). A retry re-reads the file."""
        if path.is_dir():
            with tempfile.TemporaryDirectory(prefix="kiosk-upload-") as folder:
                return await self.upload(zip_folder(path, Path(folder) / f"{path.name}.zip"))
        with path.open("rb") as file:
            body = await self._api("POST", "/api/upload", files={"file": (path.name, file)})
        return body["uploadedName"]

    async def predict(self, body: dict) -> str:
        return (await self._api("POST", "/api/predict", json=body))["hash"]

    async def status(self, key: str) -> str | None:
        return (await self._api("POST", "/api/status", json={"hash": key}))["status"]

    async def fields(self, key: str, names: list[str]) -> dict[str, str | None]:
        values = (await self._api("POST", "/api/redis", json={"hash": key, "key": names}))["value"]
        return dict(zip(names, values))

    async def expire(self, key: str, seconds: int) -> None:
        await self._api("POST", "/api/redis/expire", json={"hash": key, "expireIn": seconds})

    async def wait(self, key: str, poll_seconds: float) -> str:
        """Poll a job's status until it is done or failed."""
        while (status := await self.status(key)) not in FINAL_STATUSES:
            await asyncio.sleep(poll_seconds)
        return status

    async def download(self, url: str, target: Path) -> Path:
        """Stream a result to `target`. The token goes only to the kiosk, never to a bucket."""
        headers = self.auth if urlsplit(url).netloc == urlsplit(self.url).netloc else {}
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        async with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise KioskError(f"downloading {url} answered {response.status_code}")
            with partial.open("wb") as file:
                async for chunk in response.aiter_bytes(1024**2):
                    file.write(chunk)
        partial.replace(target)
        return target
