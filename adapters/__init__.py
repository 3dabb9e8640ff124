"""Adapters to the outside world: Twilio, RabbitMQ, the in-process queue, the simulator."""
