"""Amazon Web Services family: VPC, EKS cluster and node groups, add-ons, S3 bucket, ECR, Pod Identity."""
