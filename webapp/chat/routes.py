"""HTTP routes of the chat: thin wrappers around the services; every page needs a login."""

import json

from flask import Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..auth.services import NAME_PATTERN
from ..clock import utcnow
from ..errors import NotFound, ValidationError
from ..htmx import int_arg, is_htmx, render, wants_json
from ..ratelimits import counted_if_done
from ..realtime import live_list, presence
from . import bp, services


def _refusal(error: ValidationError) -> tuple[int, dict, dict]:
    """A refused request's status, and when it is over a limit, when to try again: the
    ``Retry-After`` header and the JSON answer's ``retry_after``."""
    status, retry_after = getattr(error, "status", 422), getattr(error, "retry_after", None)
    if not retry_after:
        return status, {}, {}
    return status, {"Retry-After": str(retry_after)}, {"retry_after": retry_after}


def _room_or_404(name: str):
    """The room called ``name`` if the viewer may read it: else 404, the same for a room that
    does not exist and for a private room or direct conversation of others."""
    try:
        return services.readable_room(_user(), name)
    except (NotFound, ValidationError):
        abort(404, description=f"There is no room '{name}'.")


def _user():
    return current_user._get_current_object()


def _room_list(current=None) -> dict:
    """The bounded room list of every chat page, and whether "All rooms" has more."""
    rooms, more = services.room_list(_user(), current)
    return {"rooms": rooms, "more_rooms": more}


def _room_context(room, **context) -> dict:
    user = _user()
    member = services.is_member(user, room)
    services.label_direct(user, [room])
    live = services.messages(room)
    seq = live.seq()  # before the messages: see live_list
    messages = live.newest(current_app.config["CHAT_PAGE_SIZE"])
    return {
        "current_room": room,
        **_room_list(room),
        "messages": messages,
        "stream": live.stream,
        "seq": seq,
        "members": services.members(room),
        "last_id": services.last_message_id(room),
        "oldest_id": messages[0].id if messages else 0,
        "has_older": len(messages) == current_app.config["CHAT_PAGE_SIZE"],
        "appear_away": presence.appears_away(_user()),
        # What the viewer may do here: the page shows the composer or Join, Leave, and the
        # creator's tools.
        "is_member": member,
        "can_post": member and room.archived_at is None,
        "can_manage": room.creator_id == user.id and not room.is_direct,
        # The server's clock, so that the page hides Edit when the server stops allowing it.
        "now": utcnow(),
        # What the viewer had read when the page opened (None: nothing is new to them).
        "last_read": None,
        **context,
    }


@bp.get("/chat")
@login_required
def index():
    """The room list, with unread counts; ?all=1 every room, by name (?after=NAME pages)."""
    if not request.args.get("all"):
        return render_template("chat/index.html", **_room_list())
    size = current_app.config["CHAT_ROOMS_PAGE_SIZE"]
    rooms, next_after = services.all_rooms(_user(), request.args.get("after"), size)
    return render_template("chat/index.html", rooms=rooms, all_rooms=True, next_after=next_after)


@bp.get("/chat/sidebar")
@login_required
def sidebar():
    """The viewer's sidebar: their rooms with unread and mention counts (a page re-reads it
    after every reconnect)."""
    rooms, more = services.room_list(_user())
    if wants_json():
        entries = [
            {"room": e.room.name, "unread": e.unread, "mentions": e.mentions, "last_id": e.last_id}
            for e in rooms
        ]
        return jsonify(ok=True, rooms=entries, more=more)
    return render_template("chat/_room_list.html", rooms=rooms)


@bp.post("/chat/read-all")
@login_required
def read_all():
    """Mark every room of the viewer read ("Mark all read"); every page of theirs hears it."""
    rooms = services.read_all(_user())
    if wants_json():
        return jsonify(ok=True, rooms=[room.name for room in rooms])
    if is_htmx():
        return "", 204
    return redirect(url_for("chat.index"), 303)


@bp.post("/chat/rooms")
@login_required
def create_room():
    """Create a room from form field `name` and go there."""
    try:
        with counted_if_done("RATELIMIT_ROOMS_PER_USER", _user()):
            room = services.create_room(
                request.form.get("name"), _user(), request.form.get("visibility")
            )
    except ValidationError as error:
        status, headers, extra = _refusal(error)
        if wants_json():
            return jsonify(ok=False, error=str(error), **extra), status, headers
        page, status = render(
            "chat/index.html",
            "chat/_room_form.html",
            status,
            **({} if is_htmx() else _room_list()),
            error=str(error),
            name=request.form.get("name", ""),
        )
        return page, status, headers
    url = url_for("chat.room", name=room.name)
    if wants_json():
        return jsonify(ok=True, room=room.name, url=url), 201
    if is_htmx():
        # Open the new room like a room link does: only the chat part of the page changes.
        return "", 201, {"HX-Location": json.dumps(_location(url))}
    return redirect(url, 303)


def _location(url: str) -> dict:
    """An htmx ``HX-Location`` that opens ``url`` like a room link: only the chat part changes."""
    return {"path": url, "target": "#chat-page", "select": "#chat-page", "swap": "outerHTML"}


def _go_to(room, status: int = 200, page: str | None = None, **data):
    """The answer to a change the viewer made to ``room``: JSON, or open its page again (or
    the page of the room called ``page``)."""
    url = url_for("chat.room", name=page or room.name)
    if wants_json():
        return jsonify(ok=True, room=room.name, **data), status
    if is_htmx():
        return "", status, {"HX-Location": json.dumps(_location(url))}
    return redirect(url, 303)


def _refused(room, error: ValidationError, **form):
    """A refused change to ``room``: 404 as for a room that does not exist when the viewer may
    not see it, else the readable reason (JSON, the room's notice fragment, or the page)."""
    if isinstance(error, NotFound):
        abort(404, description=str(error))
    status, headers, extra = _refusal(error)
    if wants_json():
        return jsonify(ok=False, error=str(error), **extra), status, headers
    html, status = render(
        "chat/room.html",
        "chat/_room_feedback.html",
        status,
        **({} if is_htmx() else _room_context(room)),
        room_error=str(error),
        **form,
    )
    return html, status, headers


def _room_action(name: str, action, page: str | None = None, **form):
    """Run ``action(user, room)`` on a room the viewer may see; answer as _go_to/_refused."""
    room = _room_or_404(name)
    try:
        action(_user(), room)
    except (NotFound, ValidationError) as error:
        return _refused(room, error, **form)
    return _go_to(room, page=page)


@bp.post("/chat/<name>/join")
@login_required
def join(name: str):
    """Become a member of a public room (a private one: 404, as if it did not exist)."""
    return _room_action(name, services.join)


@bp.post("/chat/<name>/leave")
@login_required
def leave(name: str):
    """Stop being a member of a room; a direct conversation is closed instead."""
    # A private room is gone for the viewer now: back to general.
    return _room_action(name, services.leave, page=services.GENERAL)


@bp.post("/chat/<name>/members")
@login_required
def add_member(name: str):
    """A member adds the user of form field `username` to a private room."""
    username = request.form.get("username")

    def add(user, room):
        with counted_if_done("RATELIMIT_MEMBERS_PER_USER", user):
            services.add_member(user, room, username)

    return _room_action(name, add, member_name=username or "")


@bp.post("/chat/<name>/members/remove")
@bp.post("/chat/<name>/members/<username>/remove")
@login_required
def remove_member(name: str, username: str | None = None):
    """The room's creator removes a member (named in the address or form field `username`)."""
    username = username or request.form.get("username")
    return _room_action(name, lambda user, room: services.remove_member(user, room, username))


@bp.post("/chat/<name>/rename")
@login_required
def rename(name: str):
    """The room's creator renames it to form field `name` (a new address)."""
    new_name = request.form.get("name")
    return _room_action(
        name, lambda user, room: services.rename_room(user, room, new_name), new_name=new_name
    )


@bp.post("/chat/<name>/archive")
@login_required
def archive(name: str):
    """The room's creator archives it: readable, no longer postable."""
    return _room_action(name, services.archive_room)


@bp.get("/chat/dm/<username>")
@login_required
def direct(username: str):
    """The direct conversation with ``username`` if it exists; else a page offering to start it
    (404 in JSON). A GET never starts one."""
    try:
        other = services.direct_partner(_user(), username)
    except NotFound as error:
        abort(404, description=str(error))
    room = services.find_direct(_user(), other)
    if room is not None:
        if wants_json():
            return jsonify(ok=True, room=room.name)
        return redirect(url_for("chat.room", name=room.name), 303)
    if wants_json():
        abort(404, description=f"You have no conversation with {other.username} yet.")
    return render_template("chat/start_direct.html", other=other, **_room_list())


@bp.post("/chat/dm/<username>")
@login_required
def start_direct(username: str):
    """Start (or open) the direct conversation with ``username``, listed for both."""
    try:
        other = services.direct_partner(_user(), username)
    except NotFound as error:
        abort(404, description=str(error))
    try:
        with counted_if_done("RATELIMIT_DIRECT_PER_USER", _user()):
            room, created = services.start_direct(_user(), other)
    except ValidationError as error:
        status, headers, extra = _refusal(error)
        if wants_json():
            return jsonify(ok=False, error=str(error), **extra), status, headers
        abort(status, description=str(error))
    return _go_to(room, 201 if created else 200)


@bp.get("/chat/<name>")
@login_required
def room(name: str):
    """A room: recent history, members and their presence, the composer (or Join)."""
    try:
        room = services.readable_room(_user(), name)
    except (NotFound, ValidationError):
        if wants_json():
            abort(404, description=f"There is no room '{name}'.")
        # A chat page without the room: the room list, and the name ready to create it.
        creatable = bool(NAME_PATTERN.fullmatch(name))
        return render_template(
            "chat/no_room.html",
            missing=name,
            name=name if creatable else "",  # the New room field, filled in
            **_room_list(),
        ), 404
    # Viewing shows the room without joining it; for a member, what it shows is read. What they
    # had read is taken first: the "New messages" line goes after it.
    last_read = services.last_read_id(_user(), room)
    services.mark_read(_user(), room)
    return render_template("chat/room.html", **_room_context(room, last_read=last_read))


@bp.get("/chat/<name>/messages")
@login_required
def messages(name: str):
    """Message fragments: newer than ?after=ID (catch-up), or older than ?before=ID (paging)."""
    room = _room_or_404(name)
    after, before, limit = int_arg("after"), int_arg("before"), int_arg("limit")
    if after is not None and before is not None:
        abort(400, description="Use either 'after' or 'before', not both.")
    live = services.messages(room)
    if after is not None:
        found = live.catch_up(after)
        if wants_json():
            # ``more``: beyond the catch-up cap; reload, or ask again after the last one.
            messages = [m.to_dict() for m in found.items]
            answer = jsonify(ok=True, messages=messages, more=found.overflow)
            answer.headers["X-Seq"] = str(found.seq)
            return answer
        response = Response(render_template("chat/_catchup.html", messages=found.items))
        response.headers["X-Seq"] = str(found.seq)
        if found.overflow:
            # Too far behind to patch up message by message: htmx reloads the page.
            response.headers["HX-Refresh"] = "true"
        # Not marked read here: a hidden tab catches up too (services.read_what_is_shown).
        return response
    limit = live_list.page_limit(limit, current_app.config["CHAT_PAGE_SIZE"])
    found = live.before(before, limit) if before is not None else live.newest(limit)
    if wants_json():
        return jsonify(ok=True, messages=[m.to_dict() for m in found])
    return render_template(
        "chat/_page.html",
        current_room=room,
        messages=found,
        has_older=len(found) == limit,
        oldest_id=found[0].id if found else 0,
        limit=limit,
    )


@bp.get("/chat/<name>/members")
@login_required
def members(name: str):
    """The room's members with their presence now, as updates for a shown member list."""
    room = _room_or_404(name)
    if wants_json():
        return jsonify(ok=True, members=services.member_statuses(room))
    # The catch-up of the page's live member list passes ?after=: every member is sent.
    return render_template("chat/_members_catchup.html", members=services.members(room))


@bp.get("/chat/<name>/mentions")
@login_required
def mention_choices(name: str):
    """The room's members whose name starts with ?q= (JSON): what the composer offers after @."""
    room = _room_or_404(name)
    users = services.mention_choices(room, request.args.get("q", ""), exclude=_user())
    return jsonify(ok=True, users=users)


@bp.post("/chat/<name>/messages")
@login_required
def post_message(name: str):
    """Post a message from form field `body` without the socket."""
    room = _room_or_404(name)
    try:
        message, created = services.post_message(
            _user(), room, request.form.get("body"), request.form.get("client_id")
        )
    except ValidationError as error:
        status, headers, extra = _refusal(error)
        if wants_json():
            return jsonify(ok=False, error=str(error), **extra), status, headers
        html, status = render(
            "chat/room.html",
            "chat/_composer_feedback.html",
            status,
            **({} if is_htmx() else _room_context(room)),
            error=str(error),
            body=request.form.get("body", ""),
        )
        return html, status, headers
    status = 201 if created else 200
    if wants_json():
        return jsonify(ok=True, id=message.id), status
    if is_htmx():
        # The message itself reaches this page through the socket, like everyone else's.
        return render_template("chat/_composer_feedback.html"), status
    return redirect(url_for("chat.room", name=room.name), 303)
