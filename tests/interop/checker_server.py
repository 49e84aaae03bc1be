"""Runs interop checker scripts for one test script, paying for `import torch` once.

Usage (inside the reference chroot, started by tests/interop/lib.sh through
`scripts/refenv.sh serve DIR`): checker_server.py DIR

DIR holds two FIFOs created by the caller: `jobs` (read) and `done` (written). Each job is one
line, the checker script's file name and its arguments separated by tabs. The server forks a
child per job that runs the script as `__main__` with that argv (exactly as `python3 SCRIPT
ARGS` would, except that the heavy modules are already imported), and writes the child's exit
status as one line to `done`. Output goes to the server's own stdout/stderr (the test's log).
A fresh child per job keeps checkers from seeing each other's state. EOF on `jobs` ends it.
Before the first job of a checker that loads models through transformers, the server imports
transformers' model machinery and the model classes once (transformers imports them lazily,
which would otherwise happen again in every child, about as long as a small model's check).
"""
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


# Checkers that instantiate transformers models, and what they need imported.
MODEL_CHECKERS = {"check_transformers_load.py", "check_loads_as.py", "check_logits.py"}
MODEL_CLASSES = ("LlamaForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM",
                 "DeepseekV3ForCausalLM", "Llama4ForCausalLM", "GptOssForCausalLM",
                 "AutoModelForCausalLM")
models_imported = False


def import_models_once(script):
    """Imports the model classes into the server before forking SCRIPT's child, if it needs them."""
    global models_imported
    if models_imported or os.path.basename(script) not in MODEL_CHECKERS:
        return
    models_imported = True
    try:
        import transformers
        import transformers.modeling_utils  # noqa: F401
        for name in MODEL_CLASSES:
            getattr(transformers, name)
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
        import_models_once(script)
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
