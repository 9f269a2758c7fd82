"""Sending messages: channels (SMTP, GSM modem, SMS gateway, WhatsApp), the dispatcher that
drains the engine's outbox with consent checks and retries, and AI-drafted texts."""
