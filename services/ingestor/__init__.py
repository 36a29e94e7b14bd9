"""The ingestor: validated ticks from a feed to Kafka `ticks`, rejects to `ticks.dlq`."""
