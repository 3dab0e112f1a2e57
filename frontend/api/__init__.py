"""The HTTP API: routes under `/api` composed in `frontend.api.main`."""
