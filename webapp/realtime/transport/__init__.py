"""How events travel between workers and to browsers, and the bounds on what a client sends.

- :mod:`.relay`: the message queue between workers and hosts (Redis or RabbitMQ);
- :mod:`.send_queue`: what waits for one socket, bounded (a socket that stops reading is dropped);
- :mod:`.packets`: Socket.IO packets from clients, a malformed one closing its sender's connection;
- :mod:`.frame_limit`: the largest websocket message, checked from each frame's header;
- :mod:`.pinned`: the check every patch of a pinned library's internals makes at start.
"""
