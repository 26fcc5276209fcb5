# The RAG stack on AWS: EKS runs the API, the workers and Qdrant (module rag-stack);
# RDS PostgreSQL holds API keys, the audit trail and the cost ledger; ElastiCache Redis
# the job queue and the rate limits; EFS the shared data volume (ReadWriteMany).
# ADR 0023 says why AWS and what was checked.

locals {
  name       = "rag"
  vpc_id     = data.aws_eks_cluster.this.vpc_config[0].vpc_id
  cluster_sg = data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

data "aws_vpc" "this" {
  id = local.vpc_id
}

data "aws_caller_identity" "current" {}

# One customer-managed key for everything at rest here, rotated yearly.
resource "aws_kms_key" "rag" {
  description             = "RAG stack: RDS, ElastiCache, EFS, Performance Insights"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

# --- PostgreSQL ----------------------------------------------------------------------

resource "aws_security_group" "postgres" {
  name        = "${local.name}-postgres"
  description = "PostgreSQL for the RAG stack: from the EKS nodes only"
  vpc_id      = local.vpc_id

  ingress {
    description     = "PostgreSQL from the cluster"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [local.cluster_sg]
  }
}

resource "aws_db_subnet_group" "rag" {
  name       = local.name
  subnet_ids = var.subnet_ids
}

# TLS only, every statement over 500 ms logged (with its duration) for the audit of slow
# key lookups, and connections logged.
resource "aws_db_parameter_group" "rag" {
  name   = "${local.name}-postgres16"
  family = "postgres16"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "rag" {
  identifier     = local.name
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.postgres_instance_class
  db_name        = "rag"
  username       = "rag"
  # RDS generates the password and keeps it in Secrets Manager: never in this state.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.rag.arn

  allocated_storage     = 20
  max_allocated_storage = 200
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rag.arn

  db_subnet_group_name                = aws_db_subnet_group.rag.name
  vpc_security_group_ids              = [aws_security_group.postgres.id]
  parameter_group_name                = aws_db_parameter_group.rag.name
  publicly_accessible                 = false
  multi_az                            = true
  iam_database_authentication_enabled = true

  backup_retention_period         = 14
  copy_tags_to_snapshot           = true
  deletion_protection             = true
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${local.name}-final"
  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.rag.arn
}

# --- Redis -------------------------------------------------------------------------------

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "Redis for the RAG stack: from the EKS nodes only"
  vpc_id      = local.vpc_id

  ingress {
    description     = "Redis from the cluster"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [local.cluster_sg]
  }
}

resource "aws_elasticache_subnet_group" "rag" {
  name       = local.name
  subnet_ids = var.subnet_ids
}

# Two nodes in two zones with automatic failover; TLS in transit (rediss://), the AUTH
# token, encryption at rest with the key above.
resource "aws_elasticache_replication_group" "rag" {
  replication_group_id = local.name
  description          = "RAG job queue (Dramatiq) and rate limits"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  port                 = 6379

  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.rag.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.rag.arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token

  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
}

# --- EFS: RAG_DATA_DIR, shared by the API and the workers ---------------------------------

resource "aws_security_group" "efs" {
  name        = "${local.name}-efs"
  description = "EFS for the RAG data volume: NFS from the EKS nodes only"
  vpc_id      = local.vpc_id

  ingress {
    description     = "NFS from the cluster"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [local.cluster_sg]
  }
}

resource "aws_efs_file_system" "data" {
  creation_token = "${local.name}-data"
  encrypted      = true
  kms_key_id     = aws_kms_key.rag.arn

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }
}

resource "aws_efs_backup_policy" "data" {
  file_system_id = aws_efs_file_system.data.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "data" {
  for_each        = toset(var.subnet_ids)
  file_system_id  = aws_efs_file_system.data.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

# Each claim gets an access point owned by the image's uid 10001 (infra/docker/Dockerfile).
resource "kubernetes_storage_class_v1" "efs" {
  metadata {
    name = "efs-rag"
  }
  storage_provisioner = "efs.csi.aws.com"
  reclaim_policy      = "Retain"
  parameters = {
    provisioningMode = "efs-ap"
    fileSystemId     = aws_efs_file_system.data.id
    directoryPerms   = "0700"
    uid              = "10001"
    gid              = "10001"
  }
}

# --- The stack ------------------------------------------------------------------------------

module "rag_stack" {
  source = "../../modules/rag-stack"

  image              = var.image
  hostnames          = var.hostnames
  data_storage_class = kubernetes_storage_class_v1.efs.metadata[0].name

  managed_services = {
    redis_host    = aws_elasticache_replication_group.rag.primary_endpoint_address
    postgres_host = aws_db_instance.rag.address
    cidrs         = [data.aws_vpc.this.cidr_block]
  }

  # Qdrant's volumes on gp3 (the EBS CSI driver's class; create it if your cluster has none).
  qdrant_values = [yamlencode({ persistence = { storageClassName = "gp3" } })]

  depends_on = [aws_efs_mount_target.data]
}
