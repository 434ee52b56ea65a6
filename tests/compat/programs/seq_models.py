"""Two sequence models in the style of the classic PyTorch examples: an LSTMCell sine-wave
predictor in double precision trained with optim.LBFGS (closure, `future` steps fed back
from its own output), and a small Transformer language model (nn.TransformerEncoder,
a sinusoidal PositionalEncoding buffer, a square subsequent mask) trained with plain SGD.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from _common import numpy_init, report


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 16)
        self.lstm2 = nn.LSTMCell(16, 16)
        self.linear = nn.Linear(16, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), 16, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 16, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def sine_waves():
    T, L, N = 20, 60, 8
    x = np.empty((N, L), np.int64)
    x[:] = np.array(range(L)) + np.random.default_rng(2).integers(-4 * T, 4 * T, N).reshape(N, 1)
    return np.sin(x / 1.0 / T).astype("float64")


def train_lstm():
    data = torch.from_numpy(sine_waves())
    input, target = data[2:, :-1], data[2:, 1:]
    test_input, test_target = data[:2, :-1], data[:2, 1:]
    seq = Sequence()
    seq.double()
    numpy_init(seq)
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    losses = []
    for i in range(3):
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            loss.backward()
            return loss
        optimizer.step(closure)
        with torch.no_grad():
            future = 10
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print("step", i, "test loss:", loss.item())
            losses.append(loss.item())
    return losses, pred.detach()[:, -3:].tolist()


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.0, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers):
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                         num_encoder_layers=nlayers, dropout=0.0)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.pos_encoder = PositionalEncoding(ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

    def forward(self, src):
        mask = nn.Transformer.generate_square_subsequent_mask(len(src))
        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=mask)
        return nn.functional.log_softmax(self.decoder(output), dim=-1)


def train_transformer():
    rng = np.random.default_rng(5)
    ntokens = 12
    tokens = torch.from_numpy(np.tile(rng.integers(0, ntokens, size=16), 6))
    data = tokens.view(4, -1).t().contiguous()  # (seq, batch)
    model = TransformerModel(ntokens, 16, 2, 32, 2)
    numpy_init(model)
    criterion = nn.NLLLoss()
    losses = []
    for _ in range(8):
        for i in range(0, data.size(0) - 1, 8):
            src, tgt = data[i:i + 8], data[i + 1:i + 9]
            if len(tgt) < len(src):
                src = src[:len(tgt)]
            model.zero_grad()
            output = model(src)
            loss = criterion(output.view(-1, ntokens), tgt.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-0.5)
            losses.append(loss.item())
    names = [n for n, _ in model.named_parameters()]
    return losses, names


def main():
    lstm_losses, tail = train_lstm()
    tf_losses, names = train_transformer()
    report(deterministic={"lstm_losses": lstm_losses, "lstm_tail": tail,
                          "tf_losses": tf_losses, "tf_names": names},
           checks={"tf_learned": tf_losses[-1] < tf_losses[0],
                   "lstm_learned": lstm_losses[-1] < lstm_losses[0]})


if __name__ == "__main__":
    main()
