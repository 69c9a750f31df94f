"""The labeling app for dispatchers (Streamlit) and its store operations."""
