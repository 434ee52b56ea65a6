"""A word-level LSTM language model in the style of the classic PyTorch example: a corpus
turned into a LongTensor, batchify with narrow/view/t().contiguous(), truncated
backpropagation through time with hidden states detached between chunks, gradient
clipping and a hand-written SGD step `p.data.add_(p.grad, alpha=-lr)`, perplexity from
math.exp, the model saved with torch.save and loaded back.
"""

import math
import os
import tempfile

import torch
import torch.nn as nn
from _common import numpy_init, report

WORDS = ("the ferry crosses the grey water at dawn and the gulls follow it home "
         "a lantern hangs by the door of the mill and the miller counts his sacks "
         "the road bends twice before the bridge where the children wait for the cart").split()


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


def tokenize(dictionary, text_words):
    ids = torch.LongTensor(len(text_words))
    for i, word in enumerate(text_words):
        ids[i] = dictionary.add_word(word)
    return ids


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.nhid = nhid
        self.nlayers = nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def main():
    torch.manual_seed(1111)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dictionary = Dictionary()
    train = tokenize(dictionary, WORDS * 6)
    valid = tokenize(dictionary, WORDS[::-1] * 2)
    train_data = batchify(train, 4).to(device)
    val_data = batchify(valid, 2).to(device)
    ntokens = len(dictionary)

    model = RNNModel(ntokens, 16, 24, 2, tie_weights=False).to(device)
    numpy_init(model)
    criterion = nn.NLLLoss()
    bptt, lr, clip = 8, 2.0, 0.25

    def evaluate(source):
        model.eval()
        total_loss = 0.0
        hidden = model.init_hidden(source.size(1))
        with torch.no_grad():
            for i in range(0, source.size(0) - 1, bptt):
                data, targets = get_batch(source, i, bptt)
                output, hidden = model(data, hidden)
                hidden = repackage_hidden(hidden)
                total_loss += len(data) * criterion(output, targets).item()
        return total_loss / (len(source) - 1)

    losses = []
    for epoch in range(1, 4):
        model.train()
        hidden = model.init_hidden(4)
        for i in range(0, train_data.size(0) - 1, bptt):
            data, targets = get_batch(train_data, i, bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            losses.append(loss.item())
        val_loss = evaluate(val_data)
        ppl = math.exp(val_loss)
        print(f"| end of epoch {epoch:3d} | valid loss {val_loss:5.2f} | valid ppl {ppl:8.2f}")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        torch.save(model.state_dict(), path)
        loaded = RNNModel(ntokens, 16, 24, 2)
        loaded.load_state_dict(torch.load(path))
    same = all(torch.equal(a, b) for a, b in zip(model.parameters(), loaded.parameters()))
    report(
        deterministic={"losses": losses, "val_loss": val_loss, "ntokens": ntokens,
                       "shape": list(train_data.shape),
                       "names": [n for n, _ in model.named_parameters()]},
        checks={"reloaded_equal": same, "loss_went_down": losses[-1] < losses[0]},
    )


if __name__ == "__main__":
    main()
