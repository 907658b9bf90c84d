"""Delivery orders: from a marketplace's webhook to a POS order, accepted at the provider."""
