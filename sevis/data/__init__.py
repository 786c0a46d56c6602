"""Data in: Fashion-MNIST (plain and in context), image decoding and preprocessing, labelled folders."""
