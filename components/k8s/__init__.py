"""Cloud-agnostic Kubernetes workloads shared by the GKE and EKS stacks."""
