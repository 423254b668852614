"""Webhooks to integration engines: subscriptions, signed at-least-once delivery, replay."""
