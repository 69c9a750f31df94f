"""Routes hotline tickets to departments: classifier, store and the `router` CLI."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: data/ lives here
