"""Every stack's consumers are sized from the measured figures: memory for their largest image, a
scratch volume for streaming it, and the memory limit handed to the consumer."""

import pytest
import yaml
from kubernetes.utils import parse_quantity

from components.k8s.consumers import ConsumerPoolArgs, check_memory
from consumers import sizing
from consumers.settings import ConsumerSettings
from tests.infra.stackrun import ROOT


def test_consumers_get_the_memory_and_scratch_their_largest_image_needs(run):
    for job_type in run.cfg("jobTypes"):
        _check_sized(run, run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}"))


def _check_sized(run, deployment):
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    pixels = int(env["KIOSK_MAX_IMAGE_PIXELS"]["value"])
    large = int(env["KIOSK_LARGE_IMAGE_PIXELS"]["value"])
    limits = container["resources"]["limits"]
    assert parse_quantity(limits["memory"]) >= sizing.memory_needed_mib(pixels, large) * 2**20, run.stack
    (scratch,) = pod["volumes"]
    needed = sizing.scratch_needed_bytes(pixels, sizing.INPUT_BYTES_PER_PIXEL * pixels)
    assert parse_quantity(scratch["emptyDir"]["sizeLimit"]) >= needed, run.stack
    assert limits["ephemeral-storage"] == scratch["emptyDir"]["sizeLimit"]
    assert container["volumeMounts"] == [{"name": scratch["name"], "mountPath": env["TMPDIR"]["value"]}]
    assert {name: env[name]["value"] for name in sizing.MALLOC_ENV} == sizing.MALLOC_ENV  # as measured
    assert env["KIOSK_MEMORY_LIMIT_MIB"]["valueFrom"]["resourceFieldRef"] == {
        "containerName": container["name"], "resource": "limits.memory", "divisor": "1Mi"}


def test_a_consumer_memory_below_the_measured_need_is_refused():
    check_memory("c", "4Gi", 1_000_000_000, 16_000_000)
    with pytest.raises(ValueError, match=r"memory 2Gi is below the \d+ Mi that images up to 1,000,000,000 pixels"):
        check_memory("c", "2Gi", 1_000_000_000, 16_000_000)
    with pytest.raises(ValueError, match="raise consumerMemory or lower maxImagePixels"):
        check_memory("c", "4Gi", 20_000_000_000, 16_000_000)


def test_consumer_pool_defaults_follow_the_config_schema():
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields = ConsumerPoolArgs.__dataclass_fields__
    assert fields["max_image_pixels"].default == schema["maxImagePixels"]["default"]
    assert fields["memory"].default == schema["consumerMemory"]["default"]
    consumer = ConsumerSettings.model_construct()
    assert (fields["max_image_pixels"].default, fields["large_image_pixels"].default) == (
        consumer.max_image_pixels, consumer.large_image_pixels)
