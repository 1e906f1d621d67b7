"""Drop-in torch.optim optimizers whose step also measures what it did to the stored bits."""

from .adam import Adam, AdamW
from .base import BitOptimizer
from .lion import Lion
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Lion", "BitOptimizer"]
