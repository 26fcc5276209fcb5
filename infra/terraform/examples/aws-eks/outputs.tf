output "postgres_password_secret" {
  description = "The Secrets Manager secret RDS keeps the `rag` user's password in."
  value       = aws_db_instance.rag.master_user_secret[0].secret_arn
}

output "secret_template" {
  description = "The keys of `rag-secrets` with the endpoints filled in: add the credentials, then create the Secret."
  value       = module.rag_stack.secret_template
}

output "api_service" {
  description = "Point your Ingress (AWS Load Balancer Controller) at this Service."
  value       = module.rag_stack.api_service
}
