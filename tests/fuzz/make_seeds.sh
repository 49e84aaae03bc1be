#!/usr/bin/env bash
# Regenerates the seed corpora tests/fuzz/corpus/<target>/ from the real fixtures
# (tests/fixtures): small files only. Run once when fixtures change; the seeds are
# committed so scripts/fuzz.sh and its replay mode need nothing else.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="${CKCONV_FIXTURES:-$here/../fixtures}"
formats="$fixtures/formats"
corpus="$here/corpus"
rm -rf "$corpus"
mkdir -p "$corpus"/{safetensors_header,safetensors_index,pickle,zip,torch_save,dcp_metadata,toml_subset}_fuzz

for version in torch2.6_py3.13 torch2.14_py3.14; do
  v="${version%%_*}"
  cp "$formats/$version/a.safetensors" "$corpus/safetensors_header_fuzz/$v-a.safetensors"
  cp "$formats/$version/ck/.metadata" "$corpus/pickle_fuzz/$v-ck.metadata"
  for pt in sd param ck min_plain; do
    [[ -f "$formats/$version/$pt.pt" ]] || continue
    cp "$formats/$version/$pt.pt" "$corpus/zip_fuzz/$v-$pt.pt"
    cp "$formats/$version/$pt.pt" "$corpus/torch_save_fuzz/$v-$pt.pt"
    python3 - "$formats/$version/$pt.pt" "$corpus/pickle_fuzz/$v-$pt.data.pkl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
    open(sys.argv[2], "wb").write(archive.read(name))
PY
  done
  # dcp_metadata_fuzz input: u32 LE length of .metadata, .metadata, then __0_0.distcp.
  python3 - "$formats/$version/ck" "$corpus/dcp_metadata_fuzz/$v-ck" <<'PY'
import struct, sys
meta = open(sys.argv[1] + "/.metadata", "rb").read()
data = open(sys.argv[1] + "/__0_0.distcp", "rb").read()
open(sys.argv[2], "wb").write(struct.pack("<I", len(meta)) + meta + data)
PY
done
v=torch2.14
for dir in hfout hubout; do
  cp "$formats/torch2.14_py3.14/$dir/model.safetensors.index.json" "$corpus/safetensors_index_fuzz/$v-$dir.index.json"
  for shard in "$formats/torch2.14_py3.14/$dir"/*.safetensors; do
    cp "$shard" "$corpus/safetensors_header_fuzz/$v-$dir-$(basename "$shard")"
  done
done
for family in llama3_tiny_gqa qwen3_tiny_moe deepseek_v3_tiny; do
  cp "$fixtures/adapters/$family/native_dcp/.metadata" "$corpus/pickle_fuzz/$family.metadata"
  index="$fixtures/adapters/$family/hf/model.safetensors.index.json"
  [[ -f "$index" ]] && cp "$index" "$corpus/safetensors_index_fuzz/$family.index.json"
  # The header alone (data section cut) still exercises the JSON parser and the size checks.
  python3 - "$fixtures/adapters/$family/native.safetensors" "$corpus/safetensors_header_fuzz/$family.header" <<'PY'
import struct, sys
blob = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
open(sys.argv[2], "wb").write(blob[: 8 + n])
PY
done
# Training checkpoints and the storage features refused by name (tests/fixtures/training).
training="$fixtures/training"
for name in full_v0.2 full_2026-08 zstd safetensors_serialization; do
  cp "$training/$name/.metadata" "$corpus/pickle_fuzz/training-$name.metadata"
done
for name in zstd safetensors_serialization export_qwen3_moe; do
  python3 - "$training/$name" "$corpus/dcp_metadata_fuzz/training-$name" <<'PY'
import struct, sys
meta = open(sys.argv[1] + "/.metadata", "rb").read()
data = open(sys.argv[1] + "/__0_0.distcp", "rb").read()
open(sys.argv[2], "wb").write(struct.pack("<I", len(meta)) + meta + data)
PY
done
for shard in "$training/hf_unconsolidated"/*.safetensors; do
  cp "$shard" "$corpus/safetensors_header_fuzz/training-$(basename "$shard")"
done
# --train-config TOML: the job config fixture, every accepted construct, and two refusals.
toml="$corpus/toml_subset_fuzz"
cp "$fixtures/train_configs/llama3_debugmodel.toml" "$toml/job_config.toml"
printf 'a.b = "\\u00e9\\t"\n[ "q" . x ]\nv = [1, 2.5e-3, [true, \x27lit\x27,],]\nn = -inf\n[x.y]\n' >"$toml/constructs.toml"
printf 'x = {y = 1}\n' >"$toml/inline_table.toml"
printf 'x = 1\r\ny = 2\r' >"$toml/lone_cr.toml"
du -sh "$corpus"/*
