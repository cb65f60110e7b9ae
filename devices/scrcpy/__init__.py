"""The scrcpy protocol (server 3.x and 4.x) and the client that streams a device's screen,
audio and control through it."""
