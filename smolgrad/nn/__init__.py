"""`smolgrad.nn`: modules (layers with parameters), their functional forms, init, utils.

    import smolgrad.nn as nn
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))

Every layer is a `Module` (smolgrad/nn/module.py); its parameters, buffers and children
are found by attribute assignment, and `state_dict()` keys are PyTorch's, so weights
exchange with PyTorch models by name.
"""

from . import functional  # noqa: I001  (the layers below call into it)
from . import init, utils
from .module import Buffer, Module, Parameter
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .linear import Flatten, Identity, Linear, Unflatten
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from .activation import (
    ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh,
)
from .dropout import Dropout
from .sparse import Embedding
from .transformer import (
    MultiheadAttention, Transformer, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer,
)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
    NLLLoss, SmoothL1Loss,
)

__all__ = [
    "functional", "init", "utils", "Buffer", "Module", "Parameter", "ModuleDict",
    "ModuleList", "ParameterDict", "ParameterList", "Sequential", "Flatten", "Identity",
    "Linear", "Unflatten", "Conv1d", "Conv2d", "ConvTranspose2d", "AdaptiveAvgPool2d",
    "AvgPool2d", "MaxPool2d", "BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm",
    "RMSNorm", "ELU", "GELU", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "SiLU",
    "Softmax", "Softplus", "Tanh", "Dropout", "Embedding", "MultiheadAttention",
    "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "GRU", "LSTM", "RNN", "GRUCell",
    "LSTMCell", "RNNBase", "RNNCell", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
    "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss",
]
