#!/usr/bin/env python3
"""Run a WASI command module under the wasmtime Python package.

Accepts a subset of the `wasmtime run` flags so that tests can use either:

    tools/wasmtime-run.py [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... MODULE.wasm [ARGS...]

The guest can open files only under the preopened directories. It inherits
stdin, stdout and stderr, gets MODULE.wasm as argv[0], and its exit status
becomes this process's exit status. Requires the PyPI package `wasmtime` (the set-up
installs version 51.0.0).
"""
import argparse
import os
import sys


def parse_dir(spec):
    """Split a `HOST[::GUEST]` preopen into (host, guest). Without `::GUEST`, the guest path is HOST as written."""
    host, separator, guest = spec.partition("::")
    if not separator:
        guest = host
    if not host or not guest:
        raise argparse.ArgumentTypeError(f"invalid --dir {spec!r}: expected HOST or HOST::GUEST")
    if not os.path.isdir(host):
        raise argparse.ArgumentTypeError(f"--dir {host!r} is not a directory")
    return host, guest


def parse_env(spec):
    """Split `NAME=VALUE` into (name, value). A bare `NAME` copies the value from this process."""
    name, separator, value = spec.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"invalid --env {spec!r}: expected NAME=VALUE or NAME")
    if not separator:
        value = os.environ.get(name, "")
    return name, value


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog="wasmtime-run.py",
        description="Run a WASI preview1 command module with the wasmtime Python package.",
    )
    parser.add_argument("--dir", dest="dirs", action="append", default=[], type=parse_dir,
                        metavar="HOST[::GUEST]", help="preopen the host directory HOST as GUEST (default: HOST)")
    parser.add_argument("--env", dest="envs", action="append", default=[], type=parse_env,
                        metavar="NAME[=VALUE]", help="set an environment variable in the guest")
    parser.add_argument("--profile", choices=["perfmap", "jitdump"],
                        help="let `perf` name the guest's functions: perfmap writes /tmp/perf-PID.map")
    parser.add_argument("module", help="path of the .wasm command module")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the guest")
    return parser.parse_args(argv)


def run(options):
    """Instantiate the module, call `_start`, and return the guest's exit status."""
    # Imported here so that `--help` works without the package installed.
    import wasmtime

    config = wasmtime.Config()
    if options.profile:
        config.profiler = options.profile
    engine = wasmtime.Engine(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, options.module)

    wasi = wasmtime.WasiConfig()
    wasi.argv = [options.module] + list(options.args)
    wasi.env = options.envs
    for host, guest in options.dirs:
        wasi.preopen_dir(host, guest)
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()

    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]

    # Flush Python's own buffers first because the guest writes to the same descriptors.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        print(f"wasmtime-run.py: guest trapped: {trap}", file=sys.stderr)
        return 134
    # wasi-libc's _start returns normally when main returns 0.
    return 0


def main():
    options = parse_arguments(sys.argv[1:])
    if options.args and options.args[0] == "--":
        options.args = options.args[1:]
    if not os.path.isfile(options.module):
        print(f"wasmtime-run.py: module {options.module!r} not found", file=sys.stderr)
        return 2
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
