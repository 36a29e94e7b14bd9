"""Pure detection logic shared by the streaming processor and the offline backtest.

Nothing here imports Kafka, Redis or Faust: state objects take ticks and return signals,
and their state serialises to JSON-friendly dicts.
"""
