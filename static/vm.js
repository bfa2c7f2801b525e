// A VM's page: follows its boot log (the serial console virtlogd writes into the repository)
// as an operation's page follows its log, and shows what the guest agent reports while the
// VM runs. Text only: every line goes in with textContent.
(() => {
  "use strict";

  const card = document.getElementById("boot-log-card");
  const box = document.getElementById("boot-log");
  const linesBox = document.getElementById("boot-log-lines");
  const partialBox = document.getElementById("boot-log-partial");
  const liveBadge = document.getElementById("boot-log-live");
  const empty = document.getElementById("boot-log-empty");
  const actions = document.getElementById("vm-actions");
  const guestCard = document.getElementById("guest-card");
  const FAST_MS = 1500;
  const SLOW_MS = 10000;
  const GUEST_MS = 15000;
  const KEEP_LINES = 5000; // the page keeps the newest lines; the file keeps them all
  let offset = null;
  let delay = FAST_MS;

  function vmState() {
    return actions ? actions.dataset.state : "";
  }

  async function getJson(url) {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok || response.redirected || !type.includes("application/json")) {
      window.nubeSessionEnded(response); // says so on the page when that is why
      return null; // logged out, or the VM is gone
    }
    return response.json();
  }

  function appendLines(data) {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
    if (data.restarted) {
      linesBox.textContent = "";
    }
    if (data.lines.length) {
      linesBox.appendChild(document.createTextNode(`${data.lines.join("\n")}\n`));
      const text = linesBox.textContent;
      const cut = text.split("\n");
      if (cut.length > KEEP_LINES) {
        linesBox.textContent = cut.slice(cut.length - KEEP_LINES).join("\n");
      }
    }
    partialBox.textContent = data.partial;
    if (empty && (linesBox.textContent || data.partial)) {
      empty.classList.add("d-none");
    }
    if (atBottom) {
      box.scrollTop = box.scrollHeight;
    }
  }

  async function followLog() {
    let data = null;
    try {
      const query = offset === null ? "" : `?offset=${offset}`;
      data = await getJson(`${card.dataset.url}${query}`);
    } catch (_error) {
      data = undefined; // the network hiccuped: try again, slower
    }
    if (data === null || (data && data.error)) {
      liveBadge.classList.add("d-none");
      return;
    }
    if (data) {
      const changed = data.lines.length || data.partial !== partialBox.textContent;
      appendLines(data);
      offset = data.offset;
      delay = data.more ? 0 : changed ? FAST_MS : Math.min(SLOW_MS, delay * 1.5);
    } else {
      delay = Math.min(SLOW_MS, delay * 2);
    }
    // a running VM writes its log: follow it closely; a stopped one may be started from here
    if (vmState() !== "running" && !data?.more) {
      delay = SLOW_MS;
    }
    liveBadge.classList.toggle("d-none", vmState() !== "running");
    setTimeout(followLog, delay);
  }

  // how each list the agent reports reads, one line per item (a volume's disk serial is its name)
  const LISTS = {
    addresses: (a) => `${a.interface} ${a.address}/${a.prefix}`,
    filesystems: (f) => `${f.mountpoint} ${f.type}${f.disks.length ? ` (${f.disks.join(", ")})` : ""}`,
    missing_addresses: (a) => a,
  };

  function showGuest(guest, message) {
    const table = document.getElementById("guest-table");
    const status = document.getElementById("guest-status");
    table.classList.toggle("d-none", !guest);
    status.textContent = guest ? "Reported by the QEMU guest agent." : message;
    if (!guest) {
      return;
    }
    for (const cell of table.querySelectorAll("[data-guest]")) {
      const key = cell.dataset.guest;
      cell.textContent = key in LISTS ? (guest[key] || []).map(LISTS[key]).join("\n") || "none" : guest[key] || "-";
    }
    // a NIC's address from Nube that the guest does not have: shown, not hidden
    const missing = guest.missing_addresses || [];
    document.getElementById("guest-mismatch").classList.toggle("d-none", missing.length === 0);
  }

  async function followGuest() {
    if (vmState() === "running") {
      let data;
      try {
        data = await getJson(guestCard.dataset.url);
      } catch (_error) {
        data = undefined; // the network hiccuped: keep what is shown; try again later
      }
      if (data === null) {
        return;
      }
      // outside the try: an error in this script must show, not pass for a network failure
      if (data) {
        showGuest(
          data.guest,
          data.error || "The guest agent does not answer (yet): it starts with the guest's OS.",
        );
      }
    } else {
      showGuest(null, "The VM is not running.");
    }
    setTimeout(followGuest, GUEST_MS);
  }

  if (card && box) {
    followLog();
  }
  if (guestCard) {
    followGuest();
  }
})();
