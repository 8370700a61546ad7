"""Route modules of the API."""
