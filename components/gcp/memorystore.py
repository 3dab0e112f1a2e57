"""Memorystore for Redis, the managed alternative to the in-cluster Redis."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.shapes import RedisEndpoint

TIERS = ("BASIC", "STANDARD_HA")


@dataclass(frozen=True)
class MemorystoreArgs:
    region: str
    network: pulumi.Input[str]
    tier: str = "BASIC"
    memory_size_gb: int = 1
    deletion_protection: bool = False


class Memorystore(pulumi.ComponentResource):
    """A private Redis 7.2 instance on the cluster's VPC, with AUTH.

    AUTH: every client needs the instance's generated password (kept secret;
    the workloads read it from a Kubernetes Secret, see RedisCredentials).
    In-transit TLS is not enabled: the clients (redis-py in the consumers and
    the API, KEDA's scaler) would need the instance's CA mounted and a
    rediss:// URL on port 6378, and `transit_encryption_mode` cannot be
    changed on an existing instance (it replaces it, losing the queues).
    """

    endpoint: RedisEndpoint

    def __init__(self, name: str, args: MemorystoreArgs, opts: pulumi.ResourceOptions | None = None):
        if args.tier not in TIERS:
            raise ValueError(f"Memorystore {name}: tier must be one of {TIERS}, got {args.tier!r}")
        if args.memory_size_gb < 1:
            raise ValueError(f"Memorystore {name}: memory_size_gb must be at least 1")
        super().__init__("kiosk:gcp:Memorystore", name, None, opts)
        self.instance = gcp.redis.Instance(
            name,
            region=args.region,
            tier=args.tier,
            memory_size_gb=args.memory_size_gb,
            redis_version="REDIS_7_2",
            authorized_network=args.network,
            connect_mode="DIRECT_PEERING",
            auth_enabled=True,
            # Job hashes carry a TTL; the default volatile-lru policy would
            # evict live jobs under memory pressure. Fail writes instead.
            redis_configs={"maxmemory-policy": "noeviction"},
            persistence_config=gcp.redis.InstancePersistenceConfigArgs(
                persistence_mode="RDB", rdb_snapshot_period="ONE_HOUR",
            ),
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        self.endpoint = RedisEndpoint(
            host=self.instance.host, port=6379, password=pulumi.Output.secret(self.instance.auth_string),
        )
        self.register_outputs({"host": self.instance.host})
