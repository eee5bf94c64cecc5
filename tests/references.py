"""Plain PyTorch references for the parity tests: the networks of examples/ as a person writes
them by hand (torchvision's ResNet, the DCGAN tutorial's nn.Sequential, nn.LSTM,
nn.MultiheadAttention), and for each one the map from its state_dict names to netc's.

netc's names come from the spec's scopes: ``layer2.0.downsample.0`` in torchvision is the
``skip`` ConvBN of the third ``Basic`` block, ``basic_1.skip.conv2d`` in netc.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def by_prefix(table: dict[str, str]):
    """A renaming function: the longest module path of ``table`` that prefixes a name is
    replaced by its value (``features.0.weight`` -> ``conv2d.weight``)."""

    def rename(name: str) -> str:
        for key in sorted(table, key=len, reverse=True):
            if name.startswith(key + "."):
                return table[key] + name[len(key):]
        raise KeyError(f"no netc name for {name!r}")

    return rename


# -- LeNet -------------------------------------------------------------------------------------

class LeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


LENET_NAMES = by_prefix({"features.0": "conv2d", "features.3": "conv2d_1",
                         "classifier.1": "linear", "classifier.3": "linear_1"})


# -- ResNet-18, as torchvision writes it ---------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# netc: layer1 is `Basic(64) * 2` (one Sequential, `basic`), the other six blocks stand alone.
_BLOCKS = {"layer1.0": "basic.0", "layer1.1": "basic.1", "layer2.0": "basic_1", "layer2.1": "basic_2",
           "layer3.0": "basic_3", "layer3.1": "basic_4", "layer4.0": "basic_5", "layer4.1": "basic_6"}
_IN_BLOCK = {"conv1": "conv_bn.conv2d", "bn1": "conv_bn.batchnorm", "conv2": "conv_bn_1.conv2d",
             "bn2": "conv_bn_1.batchnorm", "downsample.0": "skip.conv2d", "downsample.1": "skip.batchnorm"}
RESNET18_NAMES = by_prefix({"conv1": "conv_bn.conv2d", "bn1": "conv_bn.batchnorm", "fc": "linear"}
                           | {f"{b}.{k}": f"{n}.{v}" for b, n in _BLOCKS.items() for k, v in _IN_BLOCK.items()})


# -- DCGAN, as the PyTorch tutorial writes it ----------------------------------------------------

class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, image):
        return self.main(image)


GENERATOR_NAMES = by_prefix({"main.0": "conv_transpose2d", "main.1": "batchnorm",
                             "main.3": "up.conv_transpose2d", "main.4": "up.batchnorm",
                             "main.6": "up_1.conv_transpose2d", "main.7": "up_1.batchnorm",
                             "main.9": "up_2.conv_transpose2d", "main.10": "up_2.batchnorm",
                             "main.12": "conv_transpose2d_1"})
DISCRIMINATOR_NAMES = by_prefix({"main.0": "conv2d",
                                 "main.2": "down.conv2d", "main.3": "down.batchnorm",
                                 "main.5": "down_1.conv2d", "main.6": "down_1.batchnorm",
                                 "main.8": "down_2.conv2d", "main.9": "down_2.batchnorm",
                                 "main.11": "conv2d_1"})


# -- LSTM encoder-decoder ------------------------------------------------------------------------

class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab, dim, hidden, layers, p):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers, dropout=p, batch_first=True)

    def forward(self, tokens):
        _, (h, c) = self.rnn(self.embed(tokens))
        return h, c


class Seq2SeqDecoder(nn.Module):
    def __init__(self, vocab, dim, hidden, layers, p):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers, dropout=p, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens, h, c):
        seq, _ = self.rnn(self.embed(tokens), (h, c))
        return self.out(seq)


ENCODER_NAMES = by_prefix({"embed": "embedding", "rnn": "lstm"})
DECODER_NAMES = by_prefix({"embed": "embedding", "rnn": "lstm", "out": "linear"})


# -- LSTM encoder-decoder with Bahdanau attention ------------------------------------------------
# The PyTorch tutorial "NLP From Scratch: Translation with a Sequence to Sequence Network and
# Attention" (EncoderRNN, BahdanauAttention, AttnDecoderRNN), its GRUs made LSTMs, decoding with
# teacher forcing: the decoder's input tokens are given (start token, then the target shifted).

class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, tokens):
        return self.lstm(self.dropout(self.embedding(tokens)))  # output, (h, c)


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))  # [N, S, 1]
        weights = F.softmax(scores.squeeze(2).unsqueeze(1), dim=-1)  # [N, 1, S]
        return torch.bmm(weights, keys), weights  # context [N, 1, H]


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.lstm = nn.LSTM(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, encoder_outputs, encoder_hidden, decoder_inputs):
        hidden, outputs = encoder_hidden, []
        for i in range(decoder_inputs.shape[1]):  # teacher forcing: step i reads token i
            output, hidden = self.forward_step(decoder_inputs[:, i:i + 1], hidden, encoder_outputs)
            outputs.append(output)
        return F.log_softmax(torch.cat(outputs, dim=1), dim=-1)

    def forward_step(self, tokens, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(tokens))  # [N, 1, H]
        query = hidden[0].permute(1, 0, 2)  # h of (h, c): [N, 1, H]
        context, _ = self.attention(query, encoder_outputs)
        output, hidden = self.lstm(torch.cat((embedded, context), dim=2), hidden)
        return self.out(output), hidden


class Seq2SeqAttention(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, hidden, p):
        super().__init__()
        self.encoder = EncoderRNN(src_vocab, hidden, p)
        self.decoder = AttnDecoderRNN(hidden, tgt_vocab, p)

    def forward(self, src, tgt):
        memory, state = self.encoder(src)
        return self.decoder(memory, state, tgt)


def seq2seq_attention_names(name: str) -> str:
    """The tutorial's names -> examples/seq2seq_attention.net's. The decoder's LSTM weights
    are the cell's two gate projections: ``weight_ih`` of [embedded, context], ``weight_hh``."""
    table = {"encoder.embedding.": "embedding.", "encoder.lstm.": "lstm.",
             "decoder.embedding.": "embedding_1.", "decoder.attention.Wa.": "scan.query.",
             "decoder.attention.Ua.": "scan.keys.", "decoder.attention.Va.": "scan.scores.",
             "decoder.out.": "linear."}
    lstm = {"weight_ih_l0": "linear.weight", "bias_ih_l0": "linear.bias",
            "weight_hh_l0": "linear_1.weight", "bias_hh_l0": "linear_1.bias"}
    if name.startswith("decoder.lstm."):
        return "scan." + lstm[name.removeprefix("decoder.lstm.")]
    prefix = next(p for p in table if name.startswith(p))
    return table[prefix] + name.removeprefix(prefix)


# -- GPT-2 ---------------------------------------------------------------------------------------

class GPT2Block(nn.Module):
    def __init__(self, width, heads, p):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=p, batch_first=True)
        self.drop = nn.Dropout(p)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width), nn.Dropout(p))

    def forward(self, x):
        t = x.shape[1]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)  # True: masked
        h = self.ln_1(x)
        a, _ = self.attn(h, h, h, attn_mask=causal, need_weights=False)
        x = x + self.drop(a)
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab, context, layers, heads, width, p):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.drop = nn.Dropout(p)
        self.h = nn.ModuleList(GPT2Block(width, heads, p) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for emb in (self.wte, self.wpe):  # GPT-2's initializer_range
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, tokens):
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.drop(self.wte(tokens) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


_GPT2_BLOCK = {"ln_1": "layernorm", "attn": "self_attention", "ln_2": "layernorm_1",
               "mlp.0": "linear", "mlp.2": "linear_1"}


def gpt2_names(layers: int):
    return by_prefix({"wte": "wte", "wpe": "wpe", "ln_f": "layernorm"}
                     | {f"h.{i}.{k}": f"gpt2_block.{i}.{v}" for i in range(layers) for k, v in _GPT2_BLOCK.items()})


# -- the Transformer of "Attention Is All You Need": torch's own ---------------------------------

_ENC = {"self_attn": "self_attention", "norm1": "layernorm", "linear1": "linear", "linear2": "linear_1",
        "norm2": "layernorm_1"}
_DEC = {"self_attn": "self_attention", "norm1": "layernorm", "multihead_attn": "cross_attention",
        "norm2": "layernorm_1", "linear1": "linear", "linear2": "linear_1", "norm3": "layernorm_2"}


def transformer_names(layers: int):
    return by_prefix({"encoder.norm": "layernorm", "decoder.norm": "layernorm_1"}
                     | {f"encoder.layers.{i}.{k}": f"encoder_layer.{i}.{v}" for i in range(layers) for k, v in _ENC.items()}
                     | {f"decoder.layers.{i}.{k}": f"decoder_layer.{i}.{v}" for i in range(layers) for k, v in _DEC.items()})


# -- recurrent language model and classifier -----------------------------------------------------

class WordLM(nn.Module):
    """PyTorch's word_language_model example (LSTM, batch first)."""

    def __init__(self, vocab, dim, layers, p):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.encoder = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, num_layers=layers, dropout=p, batch_first=True)
        self.decoder = nn.Linear(dim, vocab)

    def forward(self, tokens):
        out, _ = self.rnn(self.drop(self.encoder(tokens)))
        return self.decoder(self.drop(out))


WORD_LM_NAMES = by_prefix({"encoder": "embedding", "rnn": "lstm", "decoder": "linear"})


class GRUClassifier(nn.Module):
    def __init__(self, vocab, classes, dim, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, tokens):
        seq, _ = self.gru(self.embed(tokens))
        return self.head(seq.mean(1))


GRU_CLASSIFIER_NAMES = by_prefix({"embed": "embedding", "gru": "gru", "head": "linear"})


# -- U-Net (milesial/Pytorch-UNet, unet/unet_parts.py and unet_model.py, bilinear=False) ------

class DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = nn.functional.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=2):
        super().__init__()
        self.inc = DoubleConv(n_channels, 64)
        self.down1, self.down2 = Down(64, 128), Down(128, 256)
        self.down3, self.down4 = Down(256, 512), Down(512, 1024)
        self.up1, self.up2 = Up(1024, 512), Up(512, 256)
        self.up3, self.up4 = Up(256, 128), Up(128, 64)
        self.outc = nn.Conv2d(64, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up4(self.up3(self.up2(self.up1(x5, x4), x3), x2), x1)
        return self.outc(x)


# -- VAE (pytorch/examples, vae/main.py) -----------------------------------------------------

class VAE(nn.Module):
    """pytorch/examples' MNIST VAE; ``forward`` takes the noise ``eps`` (its reparameterize
    draws ``torch.randn_like(std)``), so a test can hand it netc's eval-mode draw."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x, eps):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + eps * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar
