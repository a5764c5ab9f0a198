"""Request and response models: pydantic only at the HTTP boundary, with OpenAPI examples."""
