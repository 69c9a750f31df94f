"""The LLM router: loading (load.py), the prompt (prompt.py), exact label scoring (score.py),
constrained generation (generate.py) and the Classifier (model.py)."""


class LoadError(RuntimeError):
    """A model, adapter or GPU that is missing: the message says which and what to do."""
