"""Alert subscriptions: registry, matching, HTTP API, fan-out and webhook delivery.

The alerter hosts them and reaches them through handoff.py (the queue it hands alerts
to) and service.py (what it starts) only; nothing here imports the alerter.
"""
