// The VM console page: noVNC's RFB client over the console proxy's websocket
// (python -m app.console on CONSOLE_PORT of the dashboard's host). The token in the page is
// single-use: the proxy spends it on this connection, so a reload needs a new link.
import RFB from "./node_modules/@novnc/novnc/core/rfb.js";

const screen = document.getElementById("console-screen");
const status = document.getElementById("console-status");
const ctrlAltDel = document.getElementById("console-cad");

function say(text, colour) {
  status.textContent = text;
  status.className = `badge text-bg-${colour}`;
}

function proxyUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let host = location.hostname;
  if (host.includes(":") && !host.startsWith("[")) {
    host = `[${host}]`; // an IPv6 address
  }
  const token = encodeURIComponent(screen.dataset.token);
  return `${scheme}://${host}:${screen.dataset.port}/?token=${token}`;
}

const rfb = new RFB(screen, proxyUrl(), { shared: true });
rfb.scaleViewport = true;
rfb.background = "#000";

rfb.addEventListener("connect", () => {
  say("connected", "success");
  ctrlAltDel.disabled = false;
  rfb.focus();
});
rfb.addEventListener("disconnect", (event) => {
  ctrlAltDel.disabled = true;
  if (event.detail.clean) {
    say("disconnected", "secondary");
  } else {
    say("connection refused or lost", "danger");
  }
});
rfb.addEventListener("desktopname", (event) => {
  screen.setAttribute("aria-label", `Screen of ${event.detail.name}`);
});
ctrlAltDel.addEventListener("click", () => rfb.sendCtrlAltDel());
