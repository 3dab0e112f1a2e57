"""One module per resource; `frontend.api.main` composes them."""
