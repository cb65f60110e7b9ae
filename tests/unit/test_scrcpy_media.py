"""The emulated server's encoders and the client's decoder agree, as scrcpy's streams require."""

from __future__ import annotations

import numpy as np

from bubblescope.devices.scrcpy.decoder import VideoDecoder
from bubblescope.sim.android.media import (
    AudioEncoder,
    VideoEncoder,
    opus_head,
    split_nal_units,
)


def frames(n: int, width: int = 360, height: int = 640):
    for i in range(n):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :, 2] = 40 + i * 5
        image[100:180, (i * 7) % (width - 80):(i * 7) % (width - 80) + 80] = (250, 200, 10)
        yield image


def test_first_packet_is_a_config_packet_with_only_parameter_sets() -> None:
    encoder = VideoEncoder(360, 640)
    packets = [p for i, img in enumerate(frames(5)) for p in encoder.encode(img, 1000 + i * 40000)]
    assert packets[0].config and packets[0].pts_us is None
    assert {u[4] & 0x1F if u[2] == 0 else u[3] & 0x1F for u in split_nal_units(
        packets[0].payload)} == {7, 8}
    assert packets[1].key and not packets[1].config
    assert all(not p.config for p in packets[1:])
    pts = [p.pts_us for p in packets[1:]]
    assert pts == sorted(pts)  # no B-frames: decode order is presentation order


def test_decoder_samples_frames_at_the_requested_rate_and_scales_them() -> None:
    encoder = VideoEncoder(360, 640)
    decoder = VideoDecoder(fps=5.0, max_width=180)
    out = []
    for i, image in enumerate(frames(25)):
        for packet in encoder.encode(image, i * 40_000):  # 25 fps for one second
            out += decoder.feed(packet.payload, packet.pts_us, packet.config)
    assert decoder.decoded >= 20
    assert 4 <= len(out) <= 6  # 1 s of 25 fps video sampled at 5 fps
    assert len(out) == decoder.converted
    assert out[0].image.shape == (320, 180, 3)
    assert abs(int(out[0].image[:, :, 2].mean()) - 40) < 12  # colours survive the round trip


def test_opus_audio_starts_with_opushead() -> None:
    encoder = AudioEncoder("opus")
    tone = (np.sin(np.arange(48_000) / 48_000 * 2 * np.pi * 440) * 8000).astype(np.int16)
    packets = encoder.encode(np.stack([tone, tone], axis=1), 0)
    assert packets[0].config and packets[0].payload == opus_head()
    assert len(opus_head()) == 19
    assert len(packets) > 10 and all(p.pts_us is not None for p in packets[1:])


def test_raw_audio_is_pcm_in_packets_of_at_most_4096_bytes() -> None:
    pcm = np.zeros((3000, 2), np.int16)
    packets = AudioEncoder("raw").encode(pcm, 0)
    assert all(len(p.payload) <= 4096 for p in packets)
    assert b"".join(p.payload for p in packets) == pcm.tobytes()


def test_opus_round_trip_keeps_the_tone() -> None:
    from bubblescope.devices.scrcpy.decoder import AudioDecoder

    encoder, decoder = AudioEncoder("opus"), AudioDecoder("opus")
    t = np.arange(48_000) / 48_000
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    pcm = []
    for packet in encoder.encode(np.stack([tone, tone], axis=1), 0):
        pcm += [d.pcm for d in decoder.feed(packet.payload, packet.pts_us, packet.config)]
    decoded = np.concatenate(pcm)[:, 0].astype(float)
    assert len(decoded) > 40_000
    spectrum = np.abs(np.fft.rfft(decoded[4800:4800 + 32768]))
    peak_hz = np.argmax(spectrum) * 48_000 / 32768
    assert abs(peak_hz - 440) < 5
