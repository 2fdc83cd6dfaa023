"""What the assistant says and how it reads: the message catalog, the flow and instrument library,
the phrase library for understanding texts, and the one wording checker used at load and in tests.

May import the engine and the base modules only.
"""
