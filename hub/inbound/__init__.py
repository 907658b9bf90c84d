"""Inbound webhooks: signature verification of provider deliveries on the exact raw body."""
