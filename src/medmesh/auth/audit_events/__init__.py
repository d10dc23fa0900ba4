"""auth-service: its audit trail, served to auditors."""
