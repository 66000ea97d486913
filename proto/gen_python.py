"""Generate the Python code of the NodeRuntime contract into host/polyhost/_proto.

    python proto/gen_python.py           # regenerate
    python proto/gen_python.py --check   # exit 1 if the committed code is not current

The code is generated with grpcio-tools (which ships protoc) and committed, so installing
polyhost needs no protoc. protoc names imports after the proto's package path
(``polyhost.runtime.v1``); they are rewritten to the package the code lives in.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
SOURCE = "polyhost/runtime/v1/runtime.proto"
TARGET = ROOT / "host" / "polyhost" / "_proto"
FILES = ("runtime_pb2.py", "runtime_pb2.pyi", "runtime_pb2_grpc.py")
HEADER = "# Generated from proto/{source} by proto/gen_python.py. Do not edit.\n"


def generate(into: Path) -> None:
    with tempfile.TemporaryDirectory() as raw:
        status = protoc.main(
            [
                "protoc",
                f"-I{PROTO_DIR}",
                f"--python_out={raw}",
                f"--pyi_out={raw}",
                f"--grpc_python_out={raw}",
                str(PROTO_DIR / SOURCE),
            ]
        )
        if status != 0:
            raise SystemExit(f"protoc failed with status {status}")
        made = Path(raw) / Path(SOURCE).parent
        into.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            text = (made / name).read_text()
            text = text.replace(
                "from polyhost.runtime.v1 import runtime_pb2", "from polyhost._proto import runtime_pb2"
            )
            (into / name).write_text(HEADER.format(source=SOURCE) + text)
    init = into / "__init__.py"
    init.write_text('"""Generated code of the NodeRuntime contract (proto/); see gen_python.py."""\n')


def main() -> int:
    if "--check" not in sys.argv[1:]:
        generate(TARGET)
        return 0
    with tempfile.TemporaryDirectory() as fresh:
        generate(Path(fresh))
        stale = [
            name
            for name in (*FILES, "__init__.py")
            if not (TARGET / name).is_file() or not filecmp.cmp(Path(fresh) / name, TARGET / name, shallow=False)
        ]
    if stale:
        print(f"host/polyhost/_proto is not current ({', '.join(stale)}): run python proto/gen_python.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
