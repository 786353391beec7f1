"""The network: HEALPix layers, the hyperprior autoencoder, its conditioning and its weights."""
