"""Hardening of a protected kiosk, attacked over real sockets: the token before the body,
bounded bodies and connections, safe downloads, a framed-off portal, strict job keys."""

import socket
import time

import httpx
import pytest
import redis

from consumers.jobs import JobStatus, is_job_key
from consumers.jobstore import JobStore
from tests.fixtures.servers import wait_until
from tests.frontend.helpers import ApiProcess, png_bytes, tiff_bytes, zip_bytes

TOKEN = "k1osk-security-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MiB = 1 << 20
NO_JOB = "segmentation:" + "0" * 32


@pytest.fixture
def locked(api_for, configure):
    return api_for(configure(auth_token=TOKEN))


def connect(url: str, timeout: float = 20) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or stops sending for the timeout)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


# --- 1. the token before the body; bounded bodies and connections ---------------------------


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/upload"), ("POST", "/api/predict"), ("POST", "/api/redis"), ("POST", "/api/status"),
    ("POST", "/api/redis/expire"), ("POST", "/api/redis/"), ("GET", "/api/models"), ("POST", "/api/no-such-call"),
])
def test_an_anonymous_request_is_401_while_the_client_is_still_sending(locked, bucket_dir, method, path):
    # Under the body limits (1 GiB uploads, 1 MiB JSON), so only the token check can answer early.
    declared = 300 * MiB if path == "/api/upload" else 512 * 1024
    with connect(locked.url) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: kiosk\r\nContent-Length: {declared}\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode())
        sock.sendall(b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.tif"\r\n'
                     b"Content-Type: image/tiff\r\n\r\nII*\x00" + bytes(64 * 1024))  # 64 KiB of 300 MiB
        answer = read_answer(sock)  # the server answers and closes: it does not wait for the rest
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 401"), answer[:200]
    assert b"www-authenticate: bearer" in head and b"connection: close" in head
    assert b"bearer token" in answer
    assert not (bucket_dir / "uploads").exists()


def test_a_body_that_stops_arriving_is_408(api_for, configure):
    api = api_for(configure(body_timeout_seconds=1))
    with connect(api.url) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: kiosk\r\nContent-Length: 1000\r\n"
                     b"Content-Type: application/json\r\n\r\n{\"jobType\": ")
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"stopped arriving" in answer


def test_uploads_past_the_in_flight_budget_are_503_until_one_ends(api_for, configure, bucket_dir):
    api = api_for(configure(max_bodies_bytes=1_000_000))
    upload = {"file": ("a.tif", tiff_bytes())}
    with connect(api.url) as slow:  # an upload of 999 kB that is still arriving
        slow.sendall(b"POST /api/upload HTTP/1.1\r\nHost: kiosk\r\nContent-Length: 999000\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
        answers: list[httpx.Response] = []
        wait_until(lambda: answers.append(httpx.post(f"{api.url}/api/upload", files=upload))
                   or answers[-1].status_code == 503, 20, "a 503 while the slow upload is in")
        refused = answers[-1]
        assert refused.headers["retry-after"] and refused.headers["connection"] == "close"
        assert "try again" in refused.json()["message"]
    wait_until(lambda: httpx.post(f"{api.url}/api/upload", files=upload).status_code == 200, 20,
               "the budget to be free again")


@pytest.fixture
def served(redis_url, bucket_dir, tmp_path):
    """`python -m frontend` (uvicorn as deployed) with few connections and a short keep-alive."""
    api = ApiProcess({"KIOSK_REDIS_URL": redis_url, "KIOSK_STORAGE_URL": str(bucket_dir),
                      "KIOSK_MAX_CONNECTIONS": "3", "KIOSK_KEEP_ALIVE_SECONDS": "1"}, tmp_path / "api.log")
    yield api
    api.stop()


def test_connections_past_the_limit_are_503_and_idle_ones_close(served):
    idle = [connect(served.url) for _ in range(3)]
    try:
        wait_until(lambda: httpx.get(f"{served.url}/api/health-check").status_code == 503, 20,
                   "503 past the connection limit")
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: httpx.get(f"{served.url}/api/health-check").status_code == 200, 20, "200 again")
    with connect(served.url) as sock:  # a kept-alive connection left idle is closed by the server
        sock.sendall(b"GET /api/health-check HTTP/1.1\r\nHost: kiosk\r\n\r\n")
        started = time.monotonic()
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 15


# --- 3. ASCII digits only ------------------------------------------------------------------


@pytest.mark.parametrize("expires", ["²", "1²", "١٢٣٤٥٦٧٨٩٠", "+99999999999", " 9"])
def test_an_expiry_that_is_not_ascii_digits_is_401_not_500(locked, bucket_dir, expires):
    (bucket_dir / "output" / "j").mkdir(parents=True)
    (bucket_dir / "output" / "j" / "r.zip").write_bytes(zip_bytes({"a.txt": b"x"}))
    response = httpx.get(f"{locked.url}/api/download/output/j/r.zip",
                         params={"expires": expires, "signature": "x"})
    assert response.status_code == 401, response.text
    assert "signed" in response.json()["message"]


def test_unicode_digits_in_stored_numbers_are_not_numbers(api, client, bucket_dir, uploaded, redis_url):
    (bucket_dir / "models" / "Odd" / "²").mkdir(parents=True)
    (bucket_dir / "models" / "Odd" / "²" / "saved_model.pb").write_bytes(b"x")
    assert client.get("/api/models").status_code == 200
    name = uploaded("a.tif", tiff_bytes())
    key = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60).update(
        key, progress="²", nuclei="³")
    view = client.get(f"/api/jobs/{key}")
    assert view.status_code == 200 and view.json()["nuclei"] is None


# --- 5. downloads served by their sniffed type, sandboxed; the portal framed off ------------


SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@pytest.mark.parametrize("name, content, media_type, disposition", [
    ("labels.tif", tiff_bytes(), "image/tiff", "inline"),
    ("overlay.png", png_bytes(), "image/png", "inline"),
    ("results.zip", zip_bytes({"a.txt": b"x"}), "application/zip", "attachment"),
    ("x.svg", b"\x89PNG\r\n\x1a\n<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
     "image/png", "inline"),
    ("page.html", b"<html><script>alert(localStorage.getItem('kiosk-token'))</script>",
     "application/octet-stream", "attachment"),
])
def test_every_download_has_its_sniffed_type_nosniff_and_a_sandbox(locked, bucket_dir, name, content,
                                                                   media_type, disposition):
    (bucket_dir / "output" / "j").mkdir(parents=True)
    (bucket_dir / "output" / "j" / name).write_bytes(content)
    response = httpx.get(f"{locked.url}/api/download/output/j/{name}", headers=AUTH)
    assert response.status_code == 200 and response.content == content
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["content-disposition"].startswith(disposition)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == SANDBOX


def test_an_upload_named_svg_is_stored_and_served_as_what_it_holds(locked):
    png_first = b"\x89PNG\r\n\x1a\n<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    uploaded = httpx.post(f"{locked.url}/api/upload", headers=AUTH, files={"file": ("x.svg", png_first)}).json()
    assert uploaded["uploadedName"].endswith("/x.png")
    response = httpx.get(uploaded["imageURL"])  # the signed link, as a browser would open it
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == SANDBOX


@pytest.mark.parametrize("path", ["/api/download/output/none.zip", "/api/download/etc/passwd"])
def test_download_errors_carry_the_headers_too(locked, path):
    response = httpx.get(f"{locked.url}{path}")
    assert response.status_code in (401, 404)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == SANDBOX


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/health-check"])
def test_the_portal_has_a_policy_and_cannot_be_framed(locked, path):
    response = httpx.get(f"{locked.url}{path}")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- 6. job keys match in full; no consumer identity ----------------------------------------


def test_a_job_key_with_a_trailing_newline_is_no_job_key(locked):
    assert is_job_key(NO_JOB) and not is_job_key(NO_JOB + "\n") and not is_job_key(NO_JOB + "\n\n")
    for call in (lambda: httpx.get(f"{locked.url}/api/jobs/{NO_JOB}%0A", headers=AUTH),
                 lambda: httpx.post(f"{locked.url}/api/status", headers=AUTH, json={"hash": NO_JOB + "\n"}),
                 lambda: httpx.post(f"{locked.url}/api/redis", headers=AUTH,
                                    json={"hash": NO_JOB + "\n", "key": "status"})):
        response = call()
        assert response.status_code == 400 and "is not a job key" in response.json()["message"]


def test_the_consumer_identity_cannot_be_read(client, uploaded, redis_url):
    name = uploaded("a.tif", tiff_bytes())
    key = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=60).set_status(
        key, JobStatus.STARTED, identity="kiosk-consumer-7f9c-pod:4242")
    response = client.post("/api/redis", json={"hash": key, "key": "identity"})
    assert response.status_code == 400 and "cannot be read" in response.json()["message"]
    assert "identity" not in response.json()["message"].split("readable fields:")[1]
    both = client.post("/api/redis", json={"hash": key, "key": ["status", "identity"]})
    assert both.status_code == 400
    assert "kiosk-consumer-7f9c-pod" not in client.get(f"/api/jobs/{key}").text
