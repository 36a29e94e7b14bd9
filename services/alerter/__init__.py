"""The alerter: signals from Kafka to Redis subscribers, each alert delivered once."""
