"""Redis's password where the workloads and KEDA read it: a Secret and a TriggerAuthentication."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.objects import metadata
from components.shapes import RedisEndpoint, SecretKeyRef

SECRET_NAME = "redis-auth"
URL_KEY = "url"
PASSWORD_KEY = "password"


@dataclass(frozen=True)
class RedisCredentialsArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    endpoint: RedisEndpoint
    # KEDA's chart: the TriggerAuthentication CRD must exist first.
    keda: pulumi.Resource | None = None


class RedisCredentials(pulumi.ComponentResource):
    """For a Redis that takes AUTH: Secret `redis-auth` (the full URL with the
    password, and the password alone) and a KEDA TriggerAuthentication of the
    same name handing the password to the redis-streams scaler. Without a
    password it creates nothing and hands out the plain URL.

    `url` is what KIOSK_REDIS_URL takes: a SecretKeyRef, or the plain URL;
    `trigger_authentication` names the TriggerAuthentication, or is None.
    """

    url: pulumi.Input[str] | SecretKeyRef
    trigger_authentication: str | None

    def __init__(self, name: str, args: RedisCredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kiosk:k8s:RedisCredentials", name, None, opts)
        endpoint = args.endpoint
        if endpoint.password is None:
            self.url = endpoint.url
            self.trigger_authentication = None
            self.register_outputs({})
            return
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {"app.kubernetes.io/name": "redis-auth", "app.kubernetes.io/part-of": "kiosk"}
        secret = k8s.core.v1.Secret(
            name,
            metadata=metadata(SECRET_NAME, args.namespace, labels),
            type="Opaque",
            string_data={URL_KEY: pulumi.Output.secret(endpoint.url),
                         PASSWORD_KEY: pulumi.Output.secret(endpoint.password)},
            opts=child,
        )
        auth_opts = child if args.keda is None else pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[args.keda]))
        k8s.apiextensions.CustomResource(
            name,
            api_version="keda.sh/v1alpha1",
            kind="TriggerAuthentication",
            metadata=metadata(SECRET_NAME, args.namespace, labels),
            spec={"secretTargetRef": [{"parameter": "password", "name": secret.metadata.name, "key": PASSWORD_KEY}]},
            opts=auth_opts,
        )
        self.url = SecretKeyRef(name=secret.metadata.name, key=URL_KEY)
        self.trigger_authentication = SECRET_NAME
        self.register_outputs({"secret": secret.metadata.name})
