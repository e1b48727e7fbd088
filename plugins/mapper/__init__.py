"""StyleCLIP latent mapper (method ``mapper``)."""
