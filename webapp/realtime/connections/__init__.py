"""Connections: who may open one and for how long, and closing them.

- :mod:`.sockets`: the app's one Socket.IO connect and disconnect handler (rate limit, presence);
- :mod:`.guard`: HTTP connections under gunicorn: idle and read timeouts, a cap per address;
- :mod:`.closing`: a socket closed as a network failure would close it, an Engine.IO connection
  that never sends its CONNECT, and every socket of a user who logged out;
- :mod:`.worker`: the one id of this worker process.
"""
