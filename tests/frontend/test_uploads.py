"""Uploads: accepted types, size limits, names that stay in `uploads/`, streaming to storage."""

import socket

import httpx
import pytest

from tests.fixtures.servers import wait_until
from tests.frontend.helpers import png_bytes, tiff_bytes, zip_bytes

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)


@pytest.mark.parametrize("name, content, stored", [
    ("cells.tif", tiff_bytes(), "cells.tif"),
    ("cells.TIFF", tiff_bytes(), "cells.tif"),  # named by the kind its bytes say, not by the uploader
    ("cells.png", png_bytes(), "cells.png"),
    ("cells.jpeg", JPEG, "cells.jpg"),
    ("x.svg", png_bytes(), "x.png"),
    ("x.html", tiff_bytes(), "x.tif"),
    ("batch.zip", zip_bytes({"a.tif": tiff_bytes()}), "batch.zip"),
    ("no-extension", tiff_bytes(), "no-extension.tif"),
    ("archive", zip_bytes({"a.png": png_bytes()}), "archive.zip"),
    ("photo.tif", zip_bytes({"a.png": png_bytes()}), "photo.zip"),
    ("slide.ome.zarr.zip", zip_bytes({"slide.ome.zarr/zarr.json": b"{}"}), "slide.ome.zarr.zip"),  # one image
    ("slide.ozx", zip_bytes({"zarr.json": b"{}"}), "slide.ozx"),  # a zipped OME-Zarr keeps its suffix
    ("../../etc/passwd", tiff_bytes(), "passwd.tif"),
    ("C:\\Users\\lab\\..\\scan 01 (1).tif", tiff_bytes(), "scan_01_1_.tif"),
    ("..", tiff_bytes(), "upload.tif"),
    ("/", png_bytes(), "upload.png"),
    ("Zellkern-Übersicht.tif", tiff_bytes(), "Zellkern-Ubersicht.tif"),
    ("a" * 300 + ".tif", tiff_bytes(), "a" * 120 + ".tif"),
])
def test_accepted_files_are_stored_under_uploads(client, bucket_dir, name, content, stored):
    response = client.post("/api/upload", files={"file": (name, content)})
    assert response.status_code == 200, response.text
    key = response.json()["uploadedName"]
    prefix, folder, base = key.split("/")
    assert (prefix, base) == ("uploads", stored)
    assert len(folder) == 32
    path = (bucket_dir / key).resolve()
    assert path.is_relative_to((bucket_dir / "uploads").resolve())
    assert path.read_bytes() == content


def test_same_name_twice_does_not_clobber(client, bucket_dir):
    first = client.post("/api/upload", files={"file": ("x.png", png_bytes())}).json()["uploadedName"]
    second = client.post("/api/upload", files={"file": ("x.png", tiff_bytes())}).json()["uploadedName"]
    assert first != second
    assert (bucket_dir / first).read_bytes() == png_bytes()
    assert (bucket_dir / second).read_bytes() == tiff_bytes()


@pytest.mark.parametrize("name, content", [
    ("notes.txt", b"hello"),
    ("evil.tif", b"<script>alert(1)</script>"),
    ("x.tif", b"GIF89a" + bytes(20)),
    ("x.zip", png_bytes()),
    ("x.ozx", tiff_bytes()),
])
def test_other_content_is_415(client, bucket_dir, name, content):
    response = client.post("/api/upload", files={"file": (name, content)})
    assert response.status_code == 415
    assert response.json()["message"]
    assert not (bucket_dir / "uploads").exists()


def test_empty_and_missing_files_are_400(client):
    empty = client.post("/api/upload", files={"file": ("x.tif", b"")})
    assert empty.status_code == 400 and empty.json()["message"] == "the file is empty"
    missing = client.post("/api/upload", files={"other": ("x.tif", tiff_bytes())})
    assert missing.status_code == 400 and "file" in missing.json()["message"]
    not_multipart = client.post("/api/upload", json={"file": "x"})
    assert not_multipart.status_code == 400


@pytest.fixture
def small_api(api_for, configure):
    return api_for(configure(max_upload_bytes=100_000))


def test_oversized_upload_is_413_from_its_declared_length(small_api, bucket_dir):
    big = tiff_bytes() + bytes(200_000)
    response = httpx.post(f"{small_api.url}/api/upload", files={"file": ("big.tif", big)})
    assert response.status_code == 413
    assert "limit" in response.json()["message"]
    assert not (bucket_dir / "uploads").exists()
    assert httpx.post(f"{small_api.url}/api/upload",
                      files={"file": ("ok.tif", tiff_bytes())}).status_code == 200


def test_oversized_chunked_upload_is_413_while_streaming(small_api, bucket_dir):
    """No Content-Length: the API counts the bytes it reads and stops at the limit."""
    boundary = "kioskboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.tif\"\r\n"
            "Content-Type: image/tiff\r\n\r\n").encode() + tiff_bytes()

    def chunks():
        yield head
        for _ in range(40):
            yield bytes(10_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(f"{small_api.url}/api/upload", content=chunks(),
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert not (bucket_dir / "uploads").exists() or not any((bucket_dir / "uploads").rglob("*.tif"))


def test_oversized_json_is_413(client):
    response = client.post("/api/predict", content=b'{"imageName": "' + b"a" * 2_000_000 + b'"}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_large_upload_streams_intact(client, bucket_dir):
    content = tiff_bytes() + bytes(range(256)) * 40_000  # ~10 MB: spooled to disk, copied in chunks
    key = client.post("/api/upload", files={"file": ("large.tif", content)}).json()["uploadedName"]
    assert (bucket_dir / key).read_bytes() == content


def test_truncated_request_body_does_not_store_anything(small_api, bucket_dir):
    """Part headers and half a TIFF, then the connection drops: nothing stored, no `.partial` left."""
    image = tiff_bytes()
    part = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.tif\"\r\n"
            b"Content-Type: image/tiff\r\n\r\n")
    host, port = small_api.url.removeprefix("http://").split(":")
    state = small_api.server.server_state
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: %d\r\n\r\n" % (len(part) + len(image) + 8) + part + image[:len(image) // 2])
        wait_until(lambda: state.tasks, 10, "the server to handle the request")
    wait_until(lambda: not state.connections and not state.tasks, 10, "the server to finish with the request")
    assert httpx.get(f"{small_api.url}/api/health-check").status_code == 200
    assert [p for p in bucket_dir.rglob("*") if p.is_file() and "models" not in p.parts] == []
