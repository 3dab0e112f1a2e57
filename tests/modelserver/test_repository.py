"""ModelRepository over real SavedModels on disk, in this process."""

import shutil

import grpc
import numpy as np
import pytest

from modelserver.errors import ServingError
from modelserver.repository import ModelRepository
from tests.fixtures.model_server import TINY_MODEL


@pytest.fixture
def repository_dir(tiny_model_repository, tmp_path):
    """A private copy of the tiny repository that a test may add models to."""
    copy = tmp_path / "models"
    shutil.copytree(tiny_model_repository, copy)
    return copy


def add_version(repository_dir, tiny_model_repository, name, version):
    """Copy the tiny model in as `name/version`, atomically as an operator should."""
    staging = repository_dir / f".staging-{name}-{version}"
    shutil.copytree(tiny_model_repository / TINY_MODEL / "1", staging)
    (repository_dir / name).mkdir(exist_ok=True)
    staging.rename(repository_dir / name / str(version))


def test_scan_loads_every_version_with_its_signatures(repository_dir, tiny_model_repository):
    add_version(repository_dir, tiny_model_repository, TINY_MODEL, 3)
    repository = ModelRepository(repository_dir)

    loaded = repository.scan()

    assert sorted((model.name, model.version) for model in loaded) == [(TINY_MODEL, 1),
                                                                       (TINY_MODEL, 3)]
    assert "serving_default" in loaded[0].signature_defs
    assert repository.scan() == []


def test_get_without_version_returns_the_highest(repository_dir, tiny_model_repository):
    add_version(repository_dir, tiny_model_repository, TINY_MODEL, 10)
    add_version(repository_dir, tiny_model_repository, TINY_MODEL, 9)
    repository = ModelRepository(repository_dir)
    repository.scan()

    assert repository.get(TINY_MODEL, None).version == 10
    assert repository.get(TINY_MODEL, 9).version == 9


def test_loaded_signature_computes_the_tiny_model(repository_dir):
    repository = ModelRepository(repository_dir)
    image = np.array([[[[-1.0], [0.5]], [[2.0], [0.25]]]], dtype=np.float32)

    outputs = repository.get(TINY_MODEL, None).run("serving_default", {"image": image},
                                                   ["fgbg", "inner_distance"])

    np.testing.assert_array_equal(outputs["fgbg"], np.clip(image, 0, 1))
    np.testing.assert_array_equal(outputs["inner_distance"], 2 * image)


@pytest.mark.parametrize("name, version, request_text", [
    ("Nope", None, "Latest(Nope)"),
    (TINY_MODEL, 7, f"Specific({TINY_MODEL}, 7)"),
])
def test_unknown_servable_is_not_found_in_tf_serving_words(repository_dir, name, version,
                                                           request_text):
    repository = ModelRepository(repository_dir)

    with pytest.raises(ServingError) as raised:
        repository.get(name, version)

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.message == f"Servable not found for request: {request_text}"


def test_lookup_of_unknown_model_rescans_the_directory(repository_dir, tiny_model_repository):
    repository = ModelRepository(repository_dir)
    repository.scan()
    add_version(repository_dir, tiny_model_repository, "LateModel", 1)

    assert repository.get("LateModel", None).version == 1


def test_broken_version_is_skipped_then_loaded_once_fixed(repository_dir, tiny_model_repository,
                                                          caplog):
    broken = repository_dir / "Broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    repository = ModelRepository(repository_dir)

    assert [model.name for model in repository.scan()] == [TINY_MODEL]
    assert "could not load model Broken version 1" in caplog.text
    assert repository.scan() == []  # not retried while its files stay the same

    shutil.rmtree(broken)
    add_version(repository_dir, tiny_model_repository, "Broken", 1)
    assert [model.name for model in repository.scan()] == ["Broken"]
