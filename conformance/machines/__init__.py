"""Hypothesis state machines, one per capability, built by factories that take the adapter."""
