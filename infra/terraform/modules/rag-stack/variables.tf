# A variable that sets a RAG_* setting names it first in its description ("RAG_X: ...");
# tests/unit/test_infra_config.py compares those defaults with core/settings.py.

variable "namespace" {
  description = "Namespace of the API and the worker (created here, Pod Security `restricted`)."
  type        = string
  default     = "rag"
}

variable "qdrant_namespace" {
  description = "Namespace of the Qdrant release (created here)."
  type        = string
  default     = "qdrant"
}

variable "image" {
  description = "The image of infra/docker/Dockerfile, by digest: <registry>/rag-reference@sha256:<digest>."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "Pin the image by digest (<registry>/rag-reference@sha256:<64 hex>): a tag can move."
  }
}

variable "secret_name" {
  description = <<-EOT
    The Secret, in `namespace`, that the operator creates (never Terraform: its values would
    land in the state). Keys: RAG_STORE__API_KEY, RAG_DATABASE_URL, RAG_JOBS__REDIS_URL,
    RAG_LIMITS__STORAGE_URL and, optionally, RAG_LLM__OPENAI_API_KEY and
    RAG_LLM__ANTHROPIC_API_KEY (infra/k8s/rag-secrets.example.env).
  EOT
  type        = string
  default     = "rag-secrets"
}

variable "qdrant_api_key_secret" {
  description = "The Secret in `qdrant_namespace` holding Qdrant's API key (the chart reads it at install: create it first)."
  type = object({
    name = string
    key  = string
  })
  default = {
    name = "qdrant-api-key"
    key  = "api-key"
  }
}

variable "hostnames" {
  description = "RAG_API__ALLOWED_HOSTS: the public names of the API (your Ingress); `localhost` is added for the probes."
  type        = list(string)
}

variable "environment" {
  description = "RAG_ENVIRONMENT: production refuses the embedded store and auth mode none."
  type        = string
  default     = "production"
}

variable "auth_mode" {
  description = "RAG_AUTH__MODE: keys or oidc (none is loopback-only and refused in production)."
  type        = string
  default     = "keys"

  validation {
    condition     = contains(["keys", "oidc"], var.auth_mode)
    error_message = "A cluster serves beyond loopback: auth_mode must be keys or oidc."
  }
}

variable "otlp_endpoint" {
  description = "RAG_OBSERVABILITY__OTLP_ENDPOINT: the OpenTelemetry collector (OTLP/HTTP); null turns tracing off."
  type        = string
  default     = "http://otel-collector.observability.svc.cluster.local:4318/v1/traces"
}

variable "settings" {
  description = "More RAG_* settings for the ConfigMap (core/settings.py, .env.example); they win over the module's."
  type        = map(string)
  default     = {}
}

variable "managed_services" {
  description = "Redis and PostgreSQL, managed outside the cluster: host and port of each (their URLs, with credentials, are in the Secret), and the CIDRs their addresses are in (the NetworkPolicy's egress)."
  type = object({
    redis_host    = string
    redis_port    = optional(number, 6379)
    postgres_host = string
    postgres_port = optional(number, 5432)
    cidrs         = list(string)
  })
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller, the only source of traffic to the API."
  type        = string
  default     = "ingress-nginx"
}

variable "otel_namespace" {
  description = "Namespace of the OpenTelemetry collector (egress on 4317/4318)."
  type        = string
  default     = "observability"
}

variable "api_replicas" {
  description = "The API's HorizontalPodAutoscaler bounds (on CPU)."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 2
    max = 8
  }
}

variable "worker_replicas" {
  description = "The worker's HorizontalPodAutoscaler bounds (on CPU: a busy worker parses and embeds)."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 2
    max = 6
  }
}

variable "data_storage_class" {
  description = "A ReadWriteMany storage class for RAG_DATA_DIR, shared by the API and the workers (EFS, Filestore, Azure Files); null = the cluster's default."
  type        = string
  default     = null
}

variable "data_size" {
  description = "Size of the shared data volume (uploads waiting for a worker, the ingest manifest)."
  type        = string
  default     = "20Gi"
}

variable "qdrant_chart_version" {
  description = "Version of the official chart (https://github.com/qdrant/qdrant-helm)."
  type        = string
  default     = "1.19.0"
}

variable "qdrant_values" {
  description = "More values for the Qdrant chart, as YAML documents, after infra/k8s/qdrant-values.yaml."
  type        = list(string)
  default     = []
}
