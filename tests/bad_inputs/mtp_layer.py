#!/usr/bin/env python3
"""Adds a DeepSeek-V3-style multi-token-prediction layer to an HF checkpoint folder.

    mtp_layer.py SRC_HF_DIR OUT_DIR [embed|head]

SRC_HF_DIR holds model.safetensors (one file) and config.json of a deepseek_v3 model whose
last layer is MoE. OUT_DIR gets the same tensors plus layer N = num_hidden_layers, shaped as
the releases store it: a copy of layer N-1's block, enorm, hnorm, eh_proj [D, 2D],
shared_head.norm, and stored copies of the embeddings (embed_tokens) and of lm_head
(shared_head.head); config.json gains "num_nextn_predict_layers": 1. With `embed` or `head`,
that copy differs from the main tensor in one byte (a bad input). Plain Python 3.
"""
import json
import os
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as source:
        data = source.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    return [(name, t["dtype"], t["shape"], body[t["data_offsets"][0]:t["data_offsets"][1]])
            for name, t in header.items() if name != "__metadata__"]


def write_safetensors(path, tensors):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + data)


def add_mtp_layer(source_dir, out_dir, differ=None):
    tensors = read_safetensors(os.path.join(source_dir, "model.safetensors"))
    with open(os.path.join(source_dir, "config.json")) as source:
        config = json.load(source)
    n_layers = config["num_hidden_layers"]
    by_name = {t[0]: t for t in tensors}
    last, mtp = f"model.layers.{n_layers - 1}.", f"model.layers.{n_layers}."
    added = [(mtp + n[len(last):], d, s, r) for n, d, s, r in tensors if n.startswith(last)]
    embed, head, norm = (by_name[k] for k in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"))
    dim = norm[2][0]
    width = len(norm[3]) // dim

    def copy(name, tensor, flip):
        raw = bytearray(tensor[3])
        if flip:
            raw[len(raw) // 2] ^= 0x01
        return (name, tensor[1], tensor[2], bytes(raw))

    added += [(mtp + "enorm.weight",) + norm[1:], (mtp + "hnorm.weight",) + norm[1:],
              (mtp + "shared_head.norm.weight",) + norm[1:],
              (mtp + "eh_proj.weight", norm[1], [dim, 2 * dim], bytes(range(256)) * (dim * 2 * dim * width // 256)),
              copy(mtp + "embed_tokens.weight", embed, differ == "embed"),
              copy(mtp + "shared_head.head.weight", head, differ == "head")]
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors + added)
    config["num_nextn_predict_layers"] = 1
    with open(os.path.join(out_dir, "config.json"), "w") as out:
        json.dump(config, out, indent=2)


if __name__ == "__main__":
    add_mtp_layer(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
