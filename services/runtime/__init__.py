"""What every service shares at run time: settings, Kafka admin, lag, metrics server."""
