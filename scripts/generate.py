"""Regenerates generated/ (messages, gRPC stubs, type stubs) and envoy/mcpmesh.pb from proto/."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
import openapi  # scripts/openapi.py, beside this script
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
THIRD_PARTY = ROOT / "third_party" / "googleapis"
GENERATED_DIR = ROOT / "generated"
DESCRIPTOR = ROOT / "envoy" / "mcpmesh.pb"
OPENAPI = ROOT / "envoy" / "openapi.json"
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"
# Not imported by any mcpmesh proto, but the transcoder needs it to print the
# ErrorInfo and BadRequest details of an error as JSON.
EXTRA_DESCRIPTOR_INPUTS = ("google/rpc/error_details.proto",)


def _protoc(*args: str) -> None:
    includes = [f"-I{PROTO_DIR}", f"-I{THIRD_PARTY}", f"-I{WELL_KNOWN}"]
    code = protoc.main(["grpc_tools.protoc", *includes, *args])
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")


def generate(out_dir: Path, descriptor: Path) -> None:
    """Writes Python code into out_dir and the descriptor set into descriptor."""
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    _protoc(
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    )
    # Regular packages, so `from mcpmesh.tools.v1 import ...` works when installed.
    for folder in [p for p in out_dir.rglob("*") if p.is_dir()]:
        (folder / "__init__.py").touch()
    (out_dir / "py.typed").touch()
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    _protoc(f"--descriptor_set_out={descriptor}", "--include_imports", *sources, *EXTRA_DESCRIPTOR_INPUTS)
    # The edge serves this OpenAPI document (GET /openapi.json) from beside the descriptor set.
    openapi.write(descriptor.parent / OPENAPI.name, openapi.build(_protoc, _rest_packages(sources), descriptor))


def _rest_packages(sources: list[str]) -> list[str]:
    """The files of the packages with REST bindings: the OpenAPI document has nothing to say about the others
    (the ext_authz contract Envoy calls the gateway with)."""
    rest = {Path(s).parent for s in sources if "google/api/annotations.proto" in (PROTO_DIR / s).read_text()}
    return [s for s in sources if Path(s).parent in rest]


def _tree_differs(left: Path, right: Path) -> list[str]:
    files_left = {p.relative_to(left) for p in left.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_right = {p.relative_to(right) for p in right.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    stale = sorted(str(p) for p in files_left ^ files_right)
    for rel in files_left & files_right:
        if not filecmp.cmp(left / rel, right / rel, shallow=False):
            stale.append(str(rel))
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when generated/ or the descriptor set is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(GENERATED_DIR, ignore_errors=True)
        generate(GENERATED_DIR, DESCRIPTOR)
        print(f"generated {GENERATED_DIR.relative_to(ROOT)}/ and {DESCRIPTOR.relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh_code, fresh_descriptor = Path(tmp) / "generated", Path(tmp) / "mcpmesh.pb"
        generate(fresh_code, fresh_descriptor)
        stale = _tree_differs(fresh_code, GENERATED_DIR)
        if not DESCRIPTOR.exists() or not filecmp.cmp(fresh_descriptor, DESCRIPTOR, shallow=False):
            stale.append(str(DESCRIPTOR.relative_to(ROOT)))
        if not OPENAPI.exists() or not filecmp.cmp(Path(tmp) / OPENAPI.name, OPENAPI, shallow=False):
            stale.append(str(OPENAPI.relative_to(ROOT)))
    if stale:
        sys.exit("generated code is stale; run `make generate`:\n  " + "\n  ".join(stale))
    print("generated code is up to date")


if __name__ == "__main__":
    main()
