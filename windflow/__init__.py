"""WindFlow: deploy containerised applications onto servers you own."""
