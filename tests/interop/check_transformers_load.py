"""Checks that an HF checkpoint directory loads strictly into the real transformers class and that
the loaded model holds exactly the tensors of the files, and nothing else.

Usage: check_transformers_load.py HF_DIR ARCH_CLASS [SAME_AS_DIR]
       (e.g. LlamaForCausalLM; fully offline)

Steps, each failure printed as one line (exit 1; 0 only if every step passes; 2 on bad usage):
 1. config.json names ARCH_CLASS in "architectures"; the checkpoint (model.safetensors, or shards
    with model.safetensors.index.json) is consistent.
 2. ARCH_CLASS.from_pretrained(HF_DIR, output_loading_info=True, dtype=config's dtype or float32):
    no missing, unexpected or mismatched keys and no error messages.
 3. Coverage: the model is loaded twice under different RNG seeds; any parameter or persistent
    buffer that differs was initialised instead of loaded from the files.
 4. Tensors whose file key names a model tensor directly are bit-equal to it.
 5. Every tensor, including those transformers 5 converts on load (e.g. per-expert 2-D weights
    fused into 3-D parameters): save_pretrained of the loaded model, which reverses those
    conversions, must give back exactly the file's key set (up to the "language_model." prefix
    that Llama4ForCausalLM strips on load) and bit-identical tensors. Files in transformers'
    fused expert layout (mlp.experts.gate_up_proj) are compared with
    save_pretrained(save_original_format=False), which keeps that layout.
 6. Tied embeddings: with tie_word_embeddings the output embedding is the input embedding.
 7. With SAME_AS_DIR (another layout of the same weights, e.g. per-expert experts or the
    multimodal llama4 keys): ARCH_CLASS loaded from SAME_AS_DIR holds bit-identical tensors
    under the same names, so both layouts hold the same model.
"""

import json
import os
import sys
import tempfile

import torch
import transformers

from interop_common import CheckFailures, Checkpoint, quiet_libraries, raw_bytes, tensor_difference

# Key prefixes of hub checkpoints that a class strips on load, so that save_pretrained does not
# write them back (Llama4 language-model weights are stored under the multimodal model's
# "language_model." prefix; see fixtures/adapters/README.md).
STRIPPED_KEY_PREFIXES = ("language_model.",)
SEEDS = (1234, 4321)


def config_dtype(config):
    """The dtype the checkpoint declares (transformers 5 writes "dtype", older "torch_dtype")."""
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    dtype = getattr(torch, str(name).replace("torch.", ""), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"config.json names an unknown dtype {name!r}")
    return dtype


def load_model(model_class, hf_dir, dtype, seed, failures, report_loading_info):
    torch.manual_seed(seed)
    try:
        model, loading_info = model_class.from_pretrained(
            hf_dir, output_loading_info=True, dtype=dtype, local_files_only=True)
    except Exception as error:  # transformers' own refusal is the verdict
        failures.fail(f"from_pretrained raised {type(error).__name__}: {error}")
        return None
    for kind, entries in loading_info.items():
        if entries and report_loading_info:
            entries = sorted(map(str, entries))
            failures.fail(f"from_pretrained reports {len(entries)} {kind}: {entries[:8]}"
                          f"{' ...' if len(entries) > 8 else ''}")
    return model.eval()


def check_coverage(first_model, second_model, failures):
    first_state, second_state = first_model.state_dict(), second_model.state_dict()
    for key in sorted(first_state):
        if not torch.equal(raw_bytes(first_state[key]), raw_bytes(second_state[key])):
            failures.fail(f"model tensor {key} depends on the init seed: not loaded from the files")


def model_key_for_file_key(file_key, model_state):
    if file_key in model_state:
        return file_key
    for prefix in STRIPPED_KEY_PREFIXES:
        if file_key.startswith(prefix) and file_key[len(prefix):] in model_state:
            return file_key[len(prefix):]
    return None


def check_direct_tensors(checkpoint, model, failures):
    model_state = model.state_dict()
    matched = 0
    for file_key in checkpoint.keys():
        model_key = model_key_for_file_key(file_key, model_state)
        if model_key is None:
            continue  # converted on load; step 5 covers it
        matched += 1
        difference = tensor_difference(checkpoint.tensor(file_key), model_state[model_key])
        if difference is not None:
            failures.fail(f"{file_key}: file vs loaded model tensor {model_key}: {difference}")
    return matched


def saved_key_prefix(file_keys, saved_keys):
    """The prefix P with file_keys == {P + k for k in saved_keys}, or None."""
    for prefix in ("",) + STRIPPED_KEY_PREFIXES:
        if file_keys == {prefix + key for key in saved_keys}:
            return prefix
    return None


def is_fused_experts(checkpoint):
    return any(key.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj"))
               for key in checkpoint.keys())


def check_save_roundtrip(checkpoint, model, failures):
    # Fused expert files are what save_pretrained writes with save_original_format=False.
    original_format = not is_fused_experts(checkpoint)
    with tempfile.TemporaryDirectory(prefix="ckconv-transformers-save-") as saved_dir:
        model.save_pretrained(saved_dir, save_original_format=original_format)
        saved = Checkpoint(saved_dir)
        file_keys, saved_keys = set(checkpoint.keys()), set(saved.keys())
        prefix = saved_key_prefix(file_keys, saved_keys)
        if prefix is None:
            # Report against the most plausible prefix: the one that explains most keys.
            prefix = max(("",) + STRIPPED_KEY_PREFIXES,
                         key=lambda p: len(file_keys & {p + k for k in saved_keys}))
            expected = {prefix + key for key in saved_keys}
            for key in sorted(file_keys - expected):
                failures.fail(f"{key}: in the files but save_pretrained of the loaded model "
                              f"does not write it (ignored or consumed by transformers?)")
            for key in sorted(expected - file_keys):
                failures.fail(f"{key}: save_pretrained of the loaded model writes it but the "
                              f"files do not have it")
        for saved_key in sorted(saved_keys):
            file_key = prefix + saved_key
            if file_key not in file_keys:
                continue
            difference = tensor_difference(checkpoint.tensor(file_key), saved.tensor(saved_key))
            if difference is not None:
                failures.fail(f"{file_key}: file vs save_pretrained of the loaded model: "
                              f"{difference}")
        return len(saved_keys)


def check_tied_embeddings(model, config, failures):
    tied = bool(getattr(model.config.get_text_config(), "tie_word_embeddings", False))
    if tied != bool(config.get("tie_word_embeddings", tied)):
        failures.fail(f"model.config.tie_word_embeddings={tied} but config.json says "
                      f"{config.get('tie_word_embeddings')}")
    output_embeddings = model.get_output_embeddings()
    if output_embeddings is None:
        return
    same = output_embeddings.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    if tied and not same:
        failures.fail("tie_word_embeddings is true but the output embedding is not the input one")
    if not tied and same:
        failures.fail("tie_word_embeddings is false but the output embedding is the input one")


def main(argv):
    if len(argv) not in (2, 3):
        print("usage error: check_transformers_load.py HF_DIR ARCH_CLASS [SAME_AS_DIR]",
              file=sys.stderr)
        return 2
    hf_dir, class_name = argv[:2]
    quiet_libraries()
    failures = CheckFailures(f"check_transformers_load {class_name} {hf_dir}")

    try:
        with open(os.path.join(hf_dir, "config.json")) as config_file:
            config = json.load(config_file)
        dtype = config_dtype(config)
        checkpoint = Checkpoint(hf_dir)
    except Exception as error:
        failures.fail(f"cannot read the checkpoint: {type(error).__name__}: {error}")
        return failures.exit_code()
    if class_name not in (config.get("architectures") or []):
        failures.fail(f"config.json architectures {config.get('architectures')} "
                      f"do not name {class_name}")
    model_class = getattr(transformers, class_name, None)
    if model_class is None:
        failures.fail(f"transformers {transformers.__version__} has no class {class_name}")
        return failures.exit_code()

    first_model = load_model(model_class, hf_dir, dtype, SEEDS[0], failures, True)
    if first_model is None:
        return failures.exit_code()
    second_model = load_model(model_class, hf_dir, dtype, SEEDS[1], failures, False)
    if second_model is None:
        return failures.exit_code()
    check_coverage(first_model, second_model, failures)
    direct_count = check_direct_tensors(checkpoint, first_model, failures)
    saved_count = check_save_roundtrip(checkpoint, first_model, failures)
    check_tied_embeddings(first_model, config, failures)
    if len(argv) == 3:
        other_model = load_model(model_class, argv[2], dtype, SEEDS[0], failures, True)
        if other_model is None:
            return failures.exit_code()
        state, other_state = first_model.state_dict(), other_model.state_dict()
        if set(state) != set(other_state):
            failures.fail(f"{argv[2]} loads into other tensors: {sorted(set(state) ^ set(other_state))[:8]}")
        for key in sorted(set(state) & set(other_state)):
            difference = tensor_difference(state[key], other_state[key])
            if difference is not None:
                failures.fail(f"{key}: {hf_dir} vs {argv[2]}: {difference}")

    if not failures.count:
        print(f"OK check_transformers_load: {class_name} loads {hf_dir} strictly "
              f"({len(checkpoint.keys())} file tensors, {direct_count} compared directly, "
              f"{saved_count} via save_pretrained, {len(first_model.state_dict())} model tensors, "
              f"dtype {dtype})")
    return failures.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
