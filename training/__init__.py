"""Training: datasets from the store, fitting, evaluation reports, the promotion gate, nightly runs."""
