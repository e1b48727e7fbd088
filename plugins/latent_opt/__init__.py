"""StyleCLIP latent optimisation (method ``latent-opt``)."""
