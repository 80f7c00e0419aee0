"""playground: a deep-learning techniques playground (library half; never imports streamlit)."""

__version__ = "0.1.0"
