"""Virtual Android devices: a simulated phone behind the real ADB and scrcpy protocols."""
