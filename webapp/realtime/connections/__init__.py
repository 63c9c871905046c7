"""Connections: who may open one and for how long, and closing them."""
