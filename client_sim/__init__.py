"""Simulated phones: the app-side ``Phone``, a population that meets, and the epidemic."""
