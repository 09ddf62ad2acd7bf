"""Attach helpers, one kind per module; ``Program.attach_<kind>()`` call them."""
