"""Custom Streamlit components of the app (each with its built frontend committed beside it)."""
