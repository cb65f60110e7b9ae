"""The scrcpy server's command line: built by the client, parsed by the (emulated) server.

The server is started through `app_process` with the exact client version followed by
`key=value` arguments; it compares versions by string equality and refuses a mismatch before
touching any socket (docs/architecture.md#scrcpy-server-start).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from bubblescope.devices.errors import ProtocolError, VersionMismatch

DEVICE_JAR = "/data/local/tmp/scrcpy-server.jar"
SERVER_CLASS = "com.genymobile.scrcpy.Server"
_SHELL_SPECIAL = set(" ;'\"*$?&`#\\|<>[]{}()!~\r\n")


@dataclass(frozen=True)
class ServerOptions:
    version: str
    scid: int = -1  # 31-bit id naming the socket; -1 = plain "scrcpy"
    log_level: str = "info"
    video: bool = True
    audio: bool = True
    control: bool = True
    video_codec: str = "h264"
    audio_codec: str = "opus"
    max_size: int = 0
    max_fps: float = 0.0
    video_bit_rate: int = 8_000_000
    audio_bit_rate: int = 128_000
    tunnel_forward: bool = False
    send_device_meta: bool = True
    send_frame_meta: bool = True
    send_dummy_byte: bool = True
    send_codec_meta: bool = True
    raw_stream: bool = False
    cleanup: bool = True
    power_on: bool = True

    @property
    def socket_name(self) -> str:
        return "scrcpy" if self.scid == -1 else f"scrcpy_{self.scid:08x}"

    @property
    def streams(self) -> tuple[str, ...]:
        """Sockets in the order the server opens (or accepts) them."""
        return tuple(name for name in ("video", "audio", "control") if getattr(self, name))

    def arguments(self) -> list[str]:
        """key=value arguments as the stock client sends them: scid and log_level always,
        everything else only when it differs from the server's default."""
        default = ServerOptions(version=self.version)
        args = [f"scid={self.scid:08x}" if self.scid != -1 else None, f"log_level={self.log_level}"]
        for field in fields(self):
            if field.name in ("version", "scid", "log_level"):
                continue
            value = getattr(self, field.name)
            if value != getattr(default, field.name):
                args.append(f"{field.name}={_format(value)}")
        bad = [a for a in args if a and set(a) & _SHELL_SPECIAL]
        if bad:
            raise ProtocolError(f"server arguments may not hold shell-special characters: {bad}")
        return [a for a in args if a]

    def command(self, jar: str = DEVICE_JAR) -> str:
        return " ".join([f"CLASSPATH={jar}", "app_process", "/", SERVER_CLASS, self.version,
                         *self.arguments()])


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_value(name: str, raw: str, kind: type):
    if kind is bool:
        return raw.lower() == "true"  # Java's Boolean.parseBoolean
    try:
        if name == "scid":
            return int(raw, 16)
        return kind(raw)
    except ValueError as exc:
        raise ProtocolError(f"invalid value for {name}: {raw!r}") from exc


def parse_server_args(args: list[str], server_version: str) -> tuple[ServerOptions, list[str]]:
    """What the server makes of `<version> key=value ...`; returns the options and the unknown
    keys (which the real server only warns about)."""
    if not args:
        raise ProtocolError("missing client version")
    if args[0] != server_version:
        raise VersionMismatch(f"The server version ({server_version}) does not match the client "
                              f"({args[0]})")
    kinds = {f.name: type(getattr(ServerOptions(version=""), f.name)) for f in fields(ServerOptions)}
    values: dict[str, object] = {}
    unknown: list[str] = []
    for arg in args[1:]:
        key, sep, raw = arg.partition("=")
        if not sep:
            raise ProtocolError(f"Invalid key=value pair: \"{arg}\"")
        if key == "version" or key not in kinds:
            unknown.append(key)
            continue
        values[key] = _parse_value(key, raw, kinds[key])
    if values.get("raw_stream"):
        values.update(send_device_meta=False, send_frame_meta=False, send_dummy_byte=False,
                      send_codec_meta=False)
    options = ServerOptions(version=args[0], **values)
    if not options.streams:
        raise ProtocolError("at least one of video, audio and control must be enabled")
    return options, unknown
