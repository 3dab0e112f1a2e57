"""The kiosk's front door: HTTP API (DeepCell Kiosk contract), web portal and CLI client."""
