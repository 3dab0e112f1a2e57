"""Settings, security, logging, metrics and error handling shared by the API."""
