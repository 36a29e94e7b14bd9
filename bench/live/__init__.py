"""The live path's benchmark, one module per thing it measures (`python -m bench.live`)."""
