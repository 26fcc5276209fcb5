# The RAG stack on any Kubernetes cluster: the API (`rag serve`) and the ingest worker
# (`rag worker`) from the template's image, Qdrant from its official Helm chart, Redis
# and PostgreSQL as managed services reached through the operator's Secret. The same
# shape as infra/k8s/overlays/prod, written as Terraform resources.

locals {
  namespaces = {
    rag    = var.namespace
    qdrant = var.qdrant_namespace
  }
  qdrant_url = "http://qdrant.${var.qdrant_namespace}.svc.cluster.local:6333"

  # Settings the manifests depend on, as in infra/k8s (tests/unit/test_infra_config.py
  # checks each against core/settings.py and the Kubernetes config maps).
  fixed_settings = {
    RAG_STORE__BACKEND = "qdrant"
    RAG_JOBS__BACKEND  = "redis"
    RAG_API__HOST      = "0.0.0.0"
    RAG_API__PORT      = "8000"
    RAG_DATA_DIR       = "/app/.data"
  }

  # The ConfigMap: the fixed settings, those from variables, then the caller's (which win).
  settings = merge(
    local.fixed_settings,
    {
      RAG_ENVIRONMENT        = var.environment
      RAG_AUTH__MODE         = var.auth_mode
      RAG_STORE__URL         = local.qdrant_url
      RAG_API__ALLOWED_HOSTS = jsonencode(concat(var.hostnames, ["localhost"]))
    },
    var.otlp_endpoint == null ? {} : {
      RAG_OBSERVABILITY__TRACING       = "otlp"
      RAG_OBSERVABILITY__OTLP_ENDPOINT = var.otlp_endpoint
    },
    var.settings,
  )
}

resource "kubernetes_namespace_v1" "this" {
  for_each = local.namespaces

  metadata {
    name = each.value
    labels = {
      "app.kubernetes.io/part-of"                  = "rag"
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    }
  }
}

resource "kubernetes_config_map_v1" "settings" {
  metadata {
    name      = "rag-config"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  data = local.settings
}

# The pods call no Kubernetes API: no token, no role.
resource "kubernetes_service_account_v1" "rag" {
  metadata {
    name      = "rag"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  automount_service_account_token = false
}

# RAG_DATA_DIR: uploads waiting for a worker and the ingest manifest, written by the API
# and read by the workers on other nodes, hence ReadWriteMany.
resource "kubernetes_persistent_volume_claim_v1" "data" {
  metadata {
    name      = "rag-data"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    access_modes       = ["ReadWriteMany"]
    storage_class_name = var.data_storage_class
    resources {
      requests = {
        storage = var.data_size
      }
    }
  }
  wait_until_bound = false
}

# Qdrant: three nodes, each shard on two of them (infra/k8s/qdrant-values.yaml). The
# chart reads the API key from the Secret named below when it installs.
resource "helm_release" "qdrant" {
  name       = "qdrant"
  repository = "https://qdrant.github.io/qdrant-helm"
  chart      = "qdrant"
  version    = var.qdrant_chart_version
  namespace  = kubernetes_namespace_v1.this["qdrant"].metadata[0].name

  values = concat(
    [
      file("${path.module}/../../../k8s/qdrant-values.yaml"),
      yamlencode({
        apiKey = {
          valueFrom = {
            secretKeyRef = var.qdrant_api_key_secret
          }
        }
      }),
    ],
    var.qdrant_values,
  )

  atomic  = true
  wait    = true
  timeout = 900
}
