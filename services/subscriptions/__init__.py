"""Alert subscriptions: registry, matching, HTTP API, fan-out and webhook delivery."""
