"""Local stand-ins for the cloud (moto for AWS, the sandbox for Encord) and the `make demo` journey."""
