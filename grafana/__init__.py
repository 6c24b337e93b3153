"""Grafana dashboards as code, their query expansion, provisioning and upload."""
