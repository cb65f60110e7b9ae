"""The virtual device's stand-in for scrcpy-server.jar.

A real scrcpy-server is a jar of Android bytecode that only a phone can run. The virtual
device runs its own emulation instead, so the file pushed to it only needs to say which server
version it stands for. It is still a jar (a zip), pushed and started exactly like the real one,
so the client cannot tell the difference.
"""

from __future__ import annotations

import io
import zipfile

MARKER = "bubblescope-virtual-scrcpy-server.txt"


def build_server_jar(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n"
                     f"Implementation-Version: {version}\r\n\r\n")
        jar.writestr(MARKER, f"version={version}\n")
    return buffer.getvalue()


def server_jar_version(data: bytes) -> str | None:
    """The scrcpy version a virtual server jar stands for; None for anything else."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            text = jar.read(MARKER).decode("utf-8")
    except (zipfile.BadZipFile, KeyError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "version" and value:
            return value.strip()
    return None
