"""What runs around the routes: the pure ASGI guards (guards.py, drain.py, deadline.py, metrics.py,
rules_only.py, loop_probe.py), the server's own pieces (conn_guard.py, gc_schedule.py, reload.py),
and the operator's endpoints (ready.py, admin.py). app.py puts them together."""
