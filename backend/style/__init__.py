"""The style engine: texture parameterizations, Gatys losses with style memory, the optimization loop."""
