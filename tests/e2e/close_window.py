#!/usr/bin/env python3
"""Closes a program's windows the way a window manager's close button does: a WM_DELETE_WINDOW
client message to each viewable top-level window of PID that takes part in that protocol. The
e2e runs on Xvfb, which has no window manager to do it; the app then sees a real close request.

Usage: close_window.py PID   (exits 1, saying why, when no such window exists)
"""
import sys

from Xlib import X, display, protocol


def main() -> int:
    pid = int(sys.argv[1])
    d = display.Display()
    net_wm_pid = d.intern_atom("_NET_WM_PID")
    wm_protocols = d.intern_atom("WM_PROTOCOLS")
    wm_delete = d.intern_atom("WM_DELETE_WINDOW")
    sent = 0
    # Without a window manager nothing is reparented: top-level windows are the root's children.
    for win in d.screen().root.query_tree().children:
        owner = win.get_full_property(net_wm_pid, X.AnyPropertyType)
        if not owner or not owner.value or owner.value[0] != pid:
            continue
        if win.get_attributes().map_state != X.IsViewable:
            continue
        if wm_delete not in (win.get_wm_protocols() or []):
            continue
        event = protocol.event.ClientMessage(
            window=win,
            client_type=wm_protocols,
            data=(32, [wm_delete, X.CurrentTime, 0, 0, 0]),
        )
        win.send_event(event)
        sent += 1
    d.flush()
    if sent == 0:
        print(f"close_window: no viewable window of pid {pid} accepts WM_DELETE_WINDOW", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
