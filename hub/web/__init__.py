"""The hub web app: inbound webhook receiver now; settings views and JSON API later."""
