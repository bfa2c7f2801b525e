"""Which /api/v1 route each `nube` command calls, and the routes no command calls (with why):
tests/unit/test_client_coverage.py checks this table against the API's routes, the parser's
commands and the requests each command sends, so a route the client does not cover fails."""

# "group command" -> (method, path under /api/v1); {name} is one path segment
COMMANDS = {
    "login": ("GET", "/me"),
    "host list": ("GET", "/hosts"),
    "host show": ("GET", "/hosts/{host}"),
    "host add": ("POST", "/hosts"),
    "host update": ("PATCH", "/hosts/{host}"),
    "host drain": ("POST", "/hosts/{host}/drain"),
    "host remove": ("DELETE", "/hosts/{host}"),
    "host accept-key": ("POST", "/hosts/{host}/accept-key"),
    "vm list": ("GET", "/vms"),
    "vm show": ("GET", "/vms/{vm}"),
    "vm create": ("POST", "/vms"),
    "vm start": ("POST", "/vms/{vm}/start"),
    "vm stop": ("POST", "/vms/{vm}/stop"),
    "vm migrate": ("POST", "/vms/{vm}/migrate"),
    "vm boot-log": ("GET", "/vms/{vm}/boot-log"),
    "vm resize": ("POST", "/vms/{vm}/resize"),
    "vm save-image": ("POST", "/vms/{vm}/save-image"),
    "vm remove": ("DELETE", "/vms/{vm}"),
    "vm snapshots": ("GET", "/vms/{vm}/snapshots"),
    "vm snapshot": ("POST", "/vms/{vm}/snapshots"),
    "vm snapshot-show": ("GET", "/vms/{vm}/snapshots/{name}"),
    "vm revert": ("POST", "/vms/{vm}/snapshots/{name}/revert"),
    "vm snapshot-remove": ("DELETE", "/vms/{vm}/snapshots/{name}"),
    "volume list": ("GET", "/volumes"),
    "volume show": ("GET", "/volumes/{name}"),
    "volume create": ("POST", "/volumes"),
    "volume attach": ("POST", "/volumes/{name}/attach"),
    "volume detach": ("POST", "/volumes/{name}/detach"),
    "volume grow": ("POST", "/volumes/{name}/grow"),
    "volume remove": ("DELETE", "/volumes/{name}"),
    "network list": ("GET", "/networks"),
    "network show": ("GET", "/networks/{name}"),
    "network create": ("POST", "/networks"),
    "network rules": ("PATCH", "/networks/{name}"),
    "network remove": ("DELETE", "/networks/{name}"),
    "image list": ("GET", "/images"),
    "image show": ("GET", "/images/{name}"),
    "image build": ("POST", "/images/build"),
    "image import": ("POST", "/images/import"),
    "image remove": ("DELETE", "/images/{name}"),
    "image upload": ("PUT", "/images/{name}"),
    "op list": ("GET", "/operations"),
    "op show": ("GET", "/operations/{id}"),
    "op cancel": ("POST", "/operations/{id}/cancel"),
    "op retry": ("POST", "/operations/{id}/retry"),
    "op recheck": ("POST", "/operations/{id}/recheck"),
    "project list": ("GET", "/projects"),
    "project show": ("GET", "/projects/{name}"),
    "project create": ("POST", "/projects"),
    "project update": ("PATCH", "/projects/{name}"),
    "project remove": ("DELETE", "/projects/{name}"),
    "project add-member": ("POST", "/projects/{name}/members"),
    "project remove-member": ("DELETE", "/projects/{name}/members/{user}"),
    "user list": ("GET", "/users"),
    "user show": ("GET", "/users/{id}"),
    "user remove": ("DELETE", "/users/{id}"),
    "token list": ("GET", "/tokens"),
    "token revoke": ("DELETE", "/tokens/{id}"),
}

# (method, path) -> why no command calls it
LEFT_OUT = {
    ("GET", "/"): "the same answer as GET /me, which `nube login` reads",
    ("GET", "/docs"): "the API's reference as an HTML page, for a browser",
    ("GET", "/openapi.json"): "the API's description, for tools that generate clients",
    ("POST", "/users"): "refuses every API token (403): users are created on the dashboard",
    ("PATCH", "/users/{id}"): "refuses every API token (403): roles and passwords change on "
    "the dashboard",
}


def describe(command):
    """The route a command calls, as its help's last line says it ('' for none)."""
    route = COMMANDS.get(command)
    return f"calls {route[0]} /api/v1{route[1]}" if route else ""
