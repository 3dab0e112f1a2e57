"""The consumers' lease in every stack is the consumers' own default (redelivery within 60 s)."""

import dataclasses

from components.k8s.consumers import ConsumerPoolArgs
from consumers.settings import ConsumerSettings
from tests.infra.test_stacks import env_of, pod_spec

DEFAULT_LEASE = ConsumerSettings.model_construct().lease_seconds


def test_the_stacks_default_lease_is_the_consumers_default():
    lease = {f.name: f.default for f in dataclasses.fields(ConsumerPoolArgs)}["lease_seconds"]
    assert lease == DEFAULT_LEASE == 30


def test_every_stacks_consumers_get_the_default_lease(run):
    for job_type in run.cfg("jobTypes"):
        consumer = run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}")
        env = env_of(pod_spec(consumer)["containers"][0])
        assert float(env["KIOSK_LEASE_SECONDS"]) == DEFAULT_LEASE, consumer.urn
