"""What the routes do: storage access, the model list, uploads and jobs."""
