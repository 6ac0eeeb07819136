"""LinkStar flows: a rules-engine DSL for compliant buyer outreach."""

__version__ = "0.1.0"
