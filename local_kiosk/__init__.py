"""The whole kiosk on one machine: what `make run` starts."""
