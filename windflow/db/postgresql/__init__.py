"""django-tenants' PostgreSQL backend with a cheaper health check of pooled connections."""
