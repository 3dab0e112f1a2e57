"""`kiosk ops`: look at a running kiosk through the Kubernetes API (status, logs, acceptance, cost)."""
