"""Where snippets come from: media files (PyAV); live devices come with the runtime."""
