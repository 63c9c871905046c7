"""The Socket.IO rooms of people rather than pages: each user's own, and every logged-in one.

Every logged-in socket joins both when it connects (webapp/realtime/connections/sockets.py), on
whichever worker holds it; an emit to them goes through the message queue like any other, so it
reaches the user's tabs on every worker and host. A list of user channels in one emit reaches
each socket once (python-socketio merges the rooms' sockets), and the payload is encoded once.
"""

# Every logged-in socket (anonymous ones watch the table and hear nothing of the chat).
LOGGED_IN = "users"


def user_channel(user_id: int) -> str:
    """The Socket.IO room of every socket of one user."""
    return f"user:{user_id}"


def user_channels(user_ids) -> list[str]:
    """The channels of several users, each once, in a stable order."""
    return [user_channel(user_id) for user_id in sorted(set(user_ids))]
