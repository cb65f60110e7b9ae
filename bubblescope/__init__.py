"""bubblescope: distributed audits of short-video recommender filter bubbles.

The parts live in their own subpackages (see docs/architecture.md#parts); this package holds what they share:
the typed contracts, the content taxonomy, the job store and the error root.
"""

__version__ = "0.1.0"
