"""Pulumi ComponentResources of the kiosk: one concern per file.

`gcp/` builds the Google Cloud family (network, GKE, bucket, registry,
identities); `k8s/` holds the cloud-agnostic workloads, which take only a
Kubernetes provider, a namespace and their own typed args.
"""
