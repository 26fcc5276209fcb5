output "namespace" {
  description = "Namespace of the API and the worker."
  value       = kubernetes_namespace_v1.this["rag"].metadata[0].name
}

output "api_service" {
  description = "The API's Service (port 8000), for your Ingress."
  value       = "${kubernetes_service_v1.api.metadata[0].name}.${kubernetes_service_v1.api.metadata[0].namespace}.svc:8000"
}

output "qdrant_url" {
  description = "RAG_STORE__URL as the pods use it."
  value       = local.qdrant_url
}

output "settings" {
  description = "The ConfigMap's RAG_* settings."
  value       = local.settings
}

output "secret_template" {
  description = "The keys of the Secret to create (placeholders for the credentials): fill in, then `kubectl create secret generic --from-env-file`."
  value       = <<-EOT
    RAG_STORE__API_KEY=<the value of ${var.qdrant_api_key_secret.name}/${var.qdrant_api_key_secret.key} in ${var.qdrant_namespace}>
    RAG_DATABASE_URL=postgresql+psycopg://rag:<password>@${var.managed_services.postgres_host}:${var.managed_services.postgres_port}/rag?sslmode=require
    RAG_JOBS__REDIS_URL=rediss://:<auth token>@${var.managed_services.redis_host}:${var.managed_services.redis_port}/0
    RAG_LIMITS__STORAGE_URL=rediss://:<auth token>@${var.managed_services.redis_host}:${var.managed_services.redis_port}/1
  EOT
}
