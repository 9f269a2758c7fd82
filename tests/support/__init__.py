"""Real parts for tests: Xvfb displays, Mosquitto brokers, free loopback ports."""
