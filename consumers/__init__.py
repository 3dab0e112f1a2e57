"""The kiosk job pipeline: Redis job protocol, storage, model client and workers."""
