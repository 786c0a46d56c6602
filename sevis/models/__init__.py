"""Models: SE-ResNet, the SE architecture families, checkpoints, parameter cost, and the zoo that loads them."""
