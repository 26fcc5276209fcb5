# Default deny in the namespace, then only what is needed (infra/k8s/base/networkpolicy.yaml).

resource "kubernetes_network_policy_v1" "default_deny" {
  metadata {
    name      = "default-deny"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

resource "kubernetes_network_policy_v1" "api_ingress" {
  metadata {
    name      = "rag-api-ingress"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    pod_selector {
      match_labels = local.labels["api"]
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.ingress_namespace }
        }
      }
      ports {
        protocol = "TCP"
        port     = "8000"
      }
    }
  }
}

resource "kubernetes_network_policy_v1" "egress" {
  metadata {
    name      = "rag-egress"
    namespace = kubernetes_namespace_v1.this["rag"].metadata[0].name
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = "rag" }
    }
    policy_types = ["Egress"]

    egress { # DNS
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = "kube-system" }
        }
        pod_selector {
          match_labels = { "k8s-app" = "kube-dns" }
        }
      }
      ports {
        protocol = "UDP"
        port     = "53"
      }
      ports {
        protocol = "TCP"
        port     = "53"
      }
    }

    egress { # Qdrant: REST and gRPC
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.qdrant_namespace }
        }
      }
      ports {
        protocol = "TCP"
        port     = "6333"
      }
      ports {
        protocol = "TCP"
        port     = "6334"
      }
    }

    egress { # The OpenTelemetry collector: OTLP gRPC and HTTP
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.otel_namespace }
        }
      }
      ports {
        protocol = "TCP"
        port     = "4317"
      }
      ports {
        protocol = "TCP"
        port     = "4318"
      }
    }

    egress { # Managed Redis and PostgreSQL, by their CIDRs
      dynamic "to" {
        for_each = var.managed_services.cidrs
        content {
          ip_block {
            cidr = to.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = tostring(var.managed_services.redis_port)
      }
      ports {
        protocol = "TCP"
        port     = tostring(var.managed_services.postgres_port)
      }
    }
  }
}
