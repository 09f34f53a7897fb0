"""The floor: the least a Django REST framework list endpoint costs on this machine.

A Django project of its own (settings, one model, one ListAPIView) that answers
`GET /api/v1/environments/` with the same page of 25 environment rows as WindFlow's API, read
from the same PostgreSQL table of the same organisation's schema (the schema is the
connection's search_path, WINDFLOW_FLOOR_SCHEMA), with no authentication, no tenancy, no
throttling, no filters and no middleware. bench_api_environments.py serves it with the same
web server as WindFlow's (gunicorn forking uvicorn workers, windflow.gunicorn.WebWorker) and
measures both in the same closed loop: what WindFlow's endpoint reaches, as a share of this.
"""
