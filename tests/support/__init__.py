"""Support code shared by the test tiers: the one `wait_for`, the one `stop_process`, and the
real servers (adb, Prometheus) that integration and end-to-end tests drive."""
