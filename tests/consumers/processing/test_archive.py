"""Label TIFFs, result archives and safe reading of uploaded ZIP archives."""

import io
import zipfile

import numpy as np
import pytest
import tifffile

from consumers.errors import JobInputError
from consumers.processing.archive import ZipImages, label_tiff, zip_bytes
from tests.consumers.processing.samples import patch_zip_headers, zip_of

LIMITS = {"max_members": 10, "max_total_bytes": 1_000_000, "max_ratio": 200}
rng = np.random.default_rng(13)


def members(data: bytes, **limits) -> list[tuple[str, bytes]]:
    with ZipImages(io.BytesIO(data), **{**LIMITS, **limits}) as images:
        return [(name, b"".join(images.chunks(info))) for name, info in images.members]


# --- label TIFFs --------------------------------------------------------------------------


def decode_tiff(data: bytes) -> tuple[np.ndarray, tifffile.COMPRESSION]:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return tif.asarray(), tif.pages[0].compression


@pytest.mark.parametrize(("top", "dtype"), [(1, np.uint16), (65535, np.uint16), (65536, np.uint32)])
def test_labels_are_stored_in_the_smallest_type_that_holds_them(top, dtype):
    labels = rng.integers(0, top, (30, 40)).astype(np.int64)
    labels[0, 0] = top
    pixels, compression = decode_tiff(label_tiff(labels))
    assert pixels.dtype == dtype and compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    np.testing.assert_array_equal(pixels, labels)


def test_a_stack_of_labels_is_one_multi_page_tiff():
    labels = rng.integers(0, 300, (3, 20, 24)).astype(np.int32)
    pixels, _ = decode_tiff(label_tiff(labels))
    np.testing.assert_array_equal(pixels, labels)


def test_a_label_tiff_is_the_same_every_time():
    labels = rng.integers(0, 300, (20, 24)).astype(np.int32)
    assert label_tiff(labels) == label_tiff(labels.copy())


@pytest.mark.parametrize(
    "labels",
    [
        np.full((4, 4), -1, np.int32),
        np.full((4, 4), 2**32, np.int64),
        np.zeros((4, 4), np.float32),
        np.zeros(4, np.int32),
    ],
    ids=["negative", "too-large", "float", "1-D"],
)
def test_what_cannot_be_labels_is_refused(labels):
    with pytest.raises(ValueError):
        label_tiff(labels)


# --- result archives ----------------------------------------------------------------------


def test_a_result_archive_holds_the_files_sorted_by_name():
    files = {"b_labels.tif": b"II*\x00tiff", "a.png": b"png", "notes/summary.csv": b"x,y\n" * 100}
    with zipfile.ZipFile(io.BytesIO(zip_bytes(files))) as archive:
        assert archive.namelist() == ["a.png", "b_labels.tif", "notes/summary.csv"]
        assert {name: archive.read(name) for name in archive.namelist()} == files
        methods = {info.filename: info.compress_type for info in archive.infolist()}
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert methods == {
        "a.png": zipfile.ZIP_STORED,
        "b_labels.tif": zipfile.ZIP_STORED,
        "notes/summary.csv": zipfile.ZIP_DEFLATED,
    }


def test_a_result_archive_is_byte_identical_when_rebuilt():
    files = {f"cell_{index}.tif": rng.bytes(200) for index in range(5)} | {"summary.csv": b"a,b\n1,2\n"}
    shuffled = dict(reversed(list(files.items())))
    assert zip_bytes(files) == zip_bytes(shuffled)


@pytest.mark.parametrize("name", ["../x.tif", "/x.tif", "C:/x.tif", "a\\..\\..\\x.tif"])
def test_a_result_name_that_escapes_its_folder_is_refused(name):
    with pytest.raises(ValueError, match="result file name"):
        zip_bytes({name: b"x"})


# --- uploaded archives: what is read -------------------------------------------------------


def test_images_are_read_with_folders_flattened_into_the_name():
    upload = zip_of(
        {
            "plate/b/img.tif": b"tiff-1",
            "plate/a/img.tif": b"tiff-2",
            "top.PNG": b"png",
            "deep/er/still/x.jpeg": b"jpeg",
        }
    )
    assert members(upload) == [
        ("deep__er__still__x.jpeg", b"jpeg"),
        ("plate__a__img.tif", b"tiff-2"),
        ("plate__b__img.tif", b"tiff-1"),
        ("top.PNG", b"png"),
    ]


def test_folders_junk_and_other_files_are_skipped():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("images/"), b"")
        for name in [
            "images/a.tif",
            "__MACOSX/images/._a.tif",
            "images/._a.tif",
            "images/.DS_Store",
            "Thumbs.db",
            "README.txt",
            "results.csv",
            "nested.zip",
        ]:
            archive.writestr(name, b"content of " + name.encode())
    assert members(buffer.getvalue()) == [("images__a.tif", b"content of images/a.tif")]


def test_names_that_collide_after_flattening_stay_unique():
    upload = zip_of({"a/b__c.tif": b"1", "a__b/c.tif": b"2", "a__b__c-2.tif": b"3"})
    names = [name for name, _ in members(upload)]
    assert sorted(names) == ["a__b__c-2-2.tif", "a__b__c-2.tif", "a__b__c.tif"]


def test_a_name_repeated_inside_the_archive_is_kept_twice():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.tif", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("x.tif", b"second")
    assert members(buffer.getvalue()) == [("x.tif", b"first"), ("x-2.tif", b"second")]


def test_characters_unsafe_in_file_names_are_replaced():
    assert members(zip_of({'well A1: "day 2"?.tif': b"x"})) == [("well A1_ _day 2__.tif", b"x")]


def test_windows_backslash_folders_are_folders():
    assert members(zip_of({"plate\\well\\img.tif": b"x"})) == [("plate__well__img.tif", b"x")]


def test_the_order_does_not_depend_on_the_order_in_the_archive():
    files = {f"img_{index}.tif": bytes([index]) for index in range(5)}
    assert members(zip_of(files)) == members(zip_of(dict(reversed(list(files.items())))))


# --- uploaded archives: what is rejected ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.tif", "climbs out of its folder"),
        ("images/../../evil.tif", "climbs out of its folder"),
        ("..\\evil.tif", "climbs out of its folder"),
        ("images\\..\\..\\evil.tif", "climbs out of its folder"),
        ("/etc/evil.tif", "is an absolute path"),
        ("\\\\server\\share\\evil.tif", "is an absolute path"),
        ("C:/evil.tif", "starts with a drive letter"),
        ("c:evil.tif", "starts with a drive letter"),
        ("../README.txt", "climbs out of its folder"),  # unsafe even where it would be skipped
    ],
)
def test_a_zip_slip_member_is_rejected_by_name(name, reason):
    upload = zip_of({"fine.tif": b"x", name: b"y"})
    with pytest.raises(JobInputError, match=f"the member '{name.replace(chr(92), chr(92) * 2)}' {reason}"):
        members(upload)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(100)], ids=["empty", "text", "fake"])
def test_what_is_not_a_zip_archive_is_rejected(data):
    with pytest.raises(JobInputError, match="the upload is not a readable ZIP archive"):
        members(data)


def test_a_truncated_archive_is_rejected():
    upload = zip_of({"a.tif": rng.bytes(5000), "b.tif": rng.bytes(5000)})
    with pytest.raises(JobInputError, match="not a readable ZIP archive"):
        members(upload[: len(upload) // 2])


def test_a_corrupt_member_is_rejected_by_name():
    upload = bytearray(zip_of({"a.tif": b" ".join(b"%d" % index for index in range(3000))}))
    upload[200:220] = bytes(20)  # inside the deflated data
    with pytest.raises(JobInputError, match="the image 'a.tif' in the ZIP archive is corrupt"):
        members(bytes(upload))


def test_an_archive_without_images_is_rejected():
    upload = zip_of({"README.txt": b"hello", "__MACOSX/._x.tif": b"junk", "data/": b""})
    with pytest.raises(JobInputError, match="contains no TIFF, PNG or JPEG images"):
        members(upload)


def test_more_images_than_allowed_are_rejected():
    upload = zip_of({f"img_{index}.tif": b"x" for index in range(5)} | {"README.txt": b"", "._img_0.tif": b""})
    assert len(members(upload, max_members=5)) == 5
    with pytest.raises(JobInputError, match="contains 5 images; the limit is 4"):
        members(upload, max_members=4)


def test_a_zip_bomb_is_stopped_after_the_limit():
    upload = zip_of({"zeros.tif": bytes(20_000_000)})  # 20 MB in about 20 kB
    assert len(upload) < 50_000
    with pytest.raises(JobInputError, match="unpack to more than 1 MB, the limit"):
        members(upload)


def test_the_limit_counts_all_images_together():
    upload = zip_of({f"img_{index}.tif": bytes(300_000) for index in range(4)})
    assert len(members(upload, max_total_bytes=1_200_000)) == 4
    with pytest.raises(JobInputError, match="unpack to more than 1 MB"):
        members(upload, max_total_bytes=1_000_000)


def test_headers_that_understate_the_size_do_not_let_a_bomb_through():
    # Every header claims 1 kB; the data inflates to 20 MB.
    upload = patch_zip_headers(zip_of({"zeros.tif": bytes(20_000_000)}), size=1000)
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        assert archive.infolist()[0].file_size == 1000
    with pytest.raises(JobInputError, match="'zeros.tif' in the ZIP archive is corrupt|unpack to more than"):
        members(upload)


def test_an_encrypted_image_is_rejected():
    upload = patch_zip_headers(zip_of({"secret.tif": b"x" * 100}), flags=0x1)
    with pytest.raises(JobInputError, match="the image 'secret.tif' in the ZIP archive is password-protected"):
        members(upload)


def test_an_unsupported_compression_method_is_rejected():
    # 9 is Deflate64, which Windows uses for large archives and zipfile cannot read.
    upload = patch_zip_headers(zip_of({"big.tif": b"x" * 100}, compression=zipfile.ZIP_STORED), method=9)
    with pytest.raises(
        JobInputError, match="'big.tif' in the ZIP archive uses a compression method that is not supported"
    ):
        members(upload)
