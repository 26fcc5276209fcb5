# The API and the worker: one image, two commands, the same hardening (infra/k8s/base).

locals {
  # Secret keys each component reads (true = optional).
  api_secret_keys = {
    RAG_STORE__API_KEY         = false
    RAG_DATABASE_URL           = false
    RAG_JOBS__REDIS_URL        = false
    RAG_LIMITS__STORAGE_URL    = false
    RAG_LLM__OPENAI_API_KEY    = true
    RAG_LLM__ANTHROPIC_API_KEY = true
  }

  components = {
    api = {
      args        = ["rag", "serve"]
      replicas    = var.api_replicas
      secret_keys = local.api_secret_keys
      grace_s     = 30
      tmp_size    = "1Gi"
      # The ONNX embedding model and the store client: `rag serve` peaked at 0.43 GB RSS
      # after 20 searches (empty store), ~0.8 GB once the ONNX session has grown
      # (DEVELOPERS.md); 1.5Gi leaves room for upload bodies and query bursts.
      requests = { cpu = "500m", memory = "1Gi" }
      limits   = { cpu = "1", memory = "1536Mi" }
    }
    worker = {
      args        = ["rag", "worker", "--threads", "2"]
      replicas    = var.worker_replicas
      secret_keys = { for k, v in local.api_secret_keys : k => v if contains(["RAG_STORE__API_KEY", "RAG_DATABASE_URL", "RAG_JOBS__REDIS_URL"], k) }
      grace_s     = 60
      tmp_size    = "2Gi"
      # Two job threads, two parse processes and one ONNX session; XLSX parsing costs
      # ~0.5 GB per million cells.
      requests = { cpu = "1", memory = "1536Mi" }
      limits   = { cpu = "2", memory = "3Gi" }
    }
  }

  labels = {
    for name, _ in local.components : name => {
      "app.kubernetes.io/name"      = "rag"
      "app.kubernetes.io/component" = name
      "app.kubernetes.io/part-of"   = "rag"
    }
  }

  # `Host: localhost` passes the host allow-list (a kubelet would send the pod's IP).
  probes = {
    startup   = { path = "/healthz", period = 5, timeout = 1, failures = 24 }
    readiness = { path = "/readyz", period = 10, timeout = 5, failures = 3 }
    liveness  = { path = "/healthz", period = 20, timeout = 5, failures = 3 }
  }
}

resource "kubernetes_deployment_v1" "this" {
  #checkov:skip=CKV_K8S_14:the image is var.image, whose validation requires a digest (checkov cannot see a variable without default)
  #checkov:skip=CKV_K8S_43:the image is var.image, whose validation requires @sha256:<digest>
  #checkov:skip=CKV_K8S_35:core/settings.py reads env vars only; secret_key_ref to an operator-made Secret, no value in code or state
  for_each = local.components

  metadata {
    name      = "rag-${each.key}"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
    labels    = local.labels[each.key]
  }

  spec {
    replicas               = each.value.replicas.min
    revision_history_limit = 5

    selector {
      match_labels = local.labels[each.key]
    }

    template {
      metadata {
        labels = local.labels[each.key]
        annotations = {
          # A settings change rolls the pods (the ConfigMap's name does not change here).
          "checksum/config" = sha256(jsonencode(local.settings))
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.rag.metadata[0].name
        automount_service_account_token  = false
        termination_grace_period_seconds = each.value.grace_s

        security_context {
          run_as_non_root        = true
          run_as_user            = 10001
          run_as_group           = 10001
          fs_group               = 10001
          fs_group_change_policy = "OnRootMismatch"
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = each.key
          image             = var.image
          image_pull_policy = "Always"
          args              = each.value.args

          dynamic "port" {
            for_each = each.key == "api" ? [8000] : []
            content {
              name           = "http"
              container_port = port.value
              protocol       = "TCP"
            }
          }

          env_from {
            config_map_ref {
              name = kubernetes_config_map_v1.settings.metadata[0].name
            }
          }

          dynamic "env" {
            for_each = each.value.secret_keys
            content {
              name = env.key
              value_from {
                secret_key_ref {
                  name     = var.secret_name
                  key      = env.key
                  optional = env.value
                }
              }
            }
          }

          # The worker has no HTTP surface: no probes (a hung worker's jobs return to the
          # queue after RAG_JOBS__HEARTBEAT_TIMEOUT_S).
          dynamic "startup_probe" {
            for_each = each.key == "api" ? [local.probes.startup] : []
            content {
              http_get {
                path = startup_probe.value.path
                port = "http"
                http_header {
                  name  = "Host"
                  value = "localhost"
                }
              }
              period_seconds    = startup_probe.value.period
              timeout_seconds   = startup_probe.value.timeout
              failure_threshold = startup_probe.value.failures
            }
          }

          dynamic "readiness_probe" {
            for_each = each.key == "api" ? [local.probes.readiness] : []
            content {
              http_get {
                path = readiness_probe.value.path
                port = "http"
                http_header {
                  name  = "Host"
                  value = "localhost"
                }
              }
              period_seconds    = readiness_probe.value.period
              timeout_seconds   = readiness_probe.value.timeout
              failure_threshold = readiness_probe.value.failures
            }
          }

          dynamic "liveness_probe" {
            for_each = each.key == "api" ? [local.probes.liveness] : []
            content {
              http_get {
                path = liveness_probe.value.path
                port = "http"
                http_header {
                  name  = "Host"
                  value = "localhost"
                }
              }
              period_seconds    = liveness_probe.value.period
              timeout_seconds   = liveness_probe.value.timeout
              failure_threshold = liveness_probe.value.failures
            }
          }

          resources {
            requests = each.value.requests
            limits   = each.value.limits
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            run_as_user                = 10001
            run_as_group               = 10001
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
            seccomp_profile {
              type = "RuntimeDefault"
            }
          }

          volume_mount {
            name       = "data"
            mount_path = "/app/.data"
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "data"
          persistent_volume_claim {
            claim_name = kubernetes_persistent_volume_claim_v1.data.metadata[0].name
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = each.value.tmp_size
          }
        }
      }
    }
  }

  lifecycle {
    # The replica count belongs to the autoscaler once it runs.
    ignore_changes = [spec[0].replicas]
  }

  depends_on = [helm_release.qdrant]
}

resource "kubernetes_service_v1" "api" {
  metadata {
    name      = "rag-api"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
    labels    = local.labels["api"]
  }
  spec {
    type     = "ClusterIP"
    selector = local.labels["api"]
    port {
      name        = "http"
      port        = 8000
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

# The API scales on CPU (query embedding and fusion); a worker too (parsing, embedding).
resource "kubernetes_horizontal_pod_autoscaler_v2" "this" {
  for_each = local.components

  metadata {
    name      = "rag-${each.key}"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    min_replicas = each.value.replicas.min
    max_replicas = each.value.replicas.max
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.this[each.key].metadata[0].name
    }
    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = 70
        }
      }
    }
    behavior {
      scale_down {
        stabilization_window_seconds = 300
        select_policy                = "Max"
        policy {
          type           = "Percent"
          value          = 50
          period_seconds = 60
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "this" {
  for_each = local.components

  metadata {
    name      = "rag-${each.key}"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    max_unavailable = "1"
    selector {
      match_labels = local.labels[each.key]
    }
  }
}
