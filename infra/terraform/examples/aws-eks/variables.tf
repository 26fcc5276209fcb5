variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "An existing EKS cluster (1.30+) with the EBS and EFS CSI drivers (add-ons) installed."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more zones) for PostgreSQL, Redis and the EFS mount targets."
  type        = list(string)
}

variable "image" {
  description = "The template's image by digest, pushed to ECR: <account>.dkr.ecr.<region>.amazonaws.com/rag-reference@sha256:<digest>."
  type        = string
}

variable "hostnames" {
  description = "Public names of the API (your Ingress / ALB)."
  type        = list(string)
}

variable "redis_auth_token" {
  description = "ElastiCache's AUTH token (16-128 characters): pass it as TF_VAR_redis_auth_token from your secret store, never in a file. It lands in the (encrypted) state."
  type        = string
  sensitive   = true
}

variable "postgres_instance_class" {
  description = "RDS instance class of the metadata database (API keys, audit trail, cost ledger)."
  type        = string
  default     = "db.t4g.medium"
}

variable "redis_node_type" {
  description = "ElastiCache node type (the job queue and the shared rate limits)."
  type        = string
  default     = "cache.t4g.small"
}
