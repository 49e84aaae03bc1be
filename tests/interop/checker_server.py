"""Runs interop checker scripts for one test script, paying for `import torch` once.

Usage (inside the reference chroot, started by tests/interop/lib.sh through
`scripts/refenv.sh serve DIR`): checker_server.py DIR

DIR holds two FIFOs created by the caller: `jobs` (read) and `done` (written). Each job is one
line, the checker script's file name and its arguments separated by tabs. The server forks a
child per job that runs the script as `__main__` with that argv (exactly as `python3 SCRIPT
ARGS` would, except that the heavy modules are already imported), and writes the child's exit
status as one line to `done`. Output goes to the server's own stdout/stderr (the test's log).
A fresh child per job keeps checkers from seeing each other's state. EOF on `jobs` ends it.
Before the first job of a checker that needs them, the server imports the modules that
libraries import lazily (transformers' model classes, torch._dynamo for DTensors): imported in
each child, or in each rank a checker forks, they cost about as much as a small check.
"""
import importlib
import os
import runpy
import sys
import traceback

try:  # what every checker imports; transformers is absent from the older-suite chroot
    import torch  # noqa: F401
    import safetensors.torch  # noqa: F401
    import transformers  # noqa: F401
except ImportError:
    pass

# Checker -> modules (and transformers classes) it imports lazily, at the first use.
MODEL_CLASSES = ["transformers.modeling_utils", "transformers:LlamaForCausalLM",
                 "transformers:Qwen3ForCausalLM", "transformers:Qwen3MoeForCausalLM",
                 "transformers:DeepseekV3ForCausalLM", "transformers:Llama4ForCausalLM",
                 "transformers:GptOssForCausalLM", "transformers:AutoModelForCausalLM"]
LAZY_IMPORTS = {
    "check_transformers_load.py": MODEL_CLASSES,
    "check_loads_as.py": MODEL_CLASSES,
    "check_logits.py": MODEL_CLASSES,
    "dcp_check.py": ["torch._dynamo"],  # DTensor.from_local in each rank of a multirank write
}
imported = set()


def import_lazy_modules(script):
    """Imports, in the server before forking SCRIPT's child, what that checker imports lazily."""
    for name in LAZY_IMPORTS.get(os.path.basename(script), []):
        if name in imported:
            continue
        imported.add(name)
        module, _, attribute = name.partition(":")
        try:
            loaded = importlib.import_module(module)
            if attribute:
                getattr(loaded, attribute)
        except (ImportError, AttributeError):
            pass  # the child imports what it needs itself and reports what is missing


def run_child(script, args):
    """In the forked child: run SCRIPT as __main__; never returns."""
    code = 1
    try:
        sys.argv = [script] + args
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
    except BaseException:  # a checker that crashes fails its check, with the traceback
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv):
    directory = argv[0]
    here = os.path.dirname(os.path.abspath(__file__))
    jobs = open(os.path.join(directory, "jobs"), "r")
    done = open(os.path.join(directory, "done"), "w")
    for line in jobs:
        fields = line.rstrip("\n").split("\t")
        script = os.path.join(here, os.path.basename(fields[0]))
        import_lazy_modules(script)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            jobs.close()
            done.close()
            run_child(script, fields[1:])
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        done.write(f"{code}\n")
        done.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
