"""Google Cloud family: network, GKE cluster, bucket, registry, identities."""
