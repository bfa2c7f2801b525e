"""The VM console: a websocket proxy (websockify) from the browser's noVNC to a VM's VNC server.

Run it beside the web server with `python -m app.console`; it listens on 127.0.0.1:CONSOLE_PORT
only and reaches each host's loopback VNC through the controller's SSH key.
"""
