"""The model registry on git (GTO tags) and the promotion gate's rules and statistics."""
