"""The backend service: a ZeroMQ ROUTER server that queues and runs stylization jobs."""
