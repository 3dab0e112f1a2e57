"""A client of any kiosk's HTTP API: submit files, wait, download, benchmark (`kiosk` CLI)."""
