// Follows a running operation on its page: polls log.json about once a second, appends new
// log lines as text, updates the status badge and progress bar, and stops at a terminal status.
// log.json carries the API's operation fields (its progress as {percent, text} and the times as
// the page shows them, both from the server): this script only places them.
(() => {
  "use strict";

  const root = document.getElementById("operation");
  if (!root || root.dataset.done === "1") {
    return;
  }
  const logUrl = root.dataset.logUrl;
  // state words' colours and labels: app/states, served by base.html's body
  const served = JSON.parse(document.body.dataset.nubeStates || "{}");
  const colours = served.colours || {};
  const labels = served.labels || {};
  const log = document.getElementById("op-log");
  const statusBox = document.getElementById("op-status");
  const progress = document.getElementById("op-progress");
  const bar = progress ? progress.querySelector(".progress-bar") : null;
  const progressText = progress
    ? progress.parentElement.querySelector('[data-slot="progress"]')
    : null;
  const live = document.getElementById("op-live");
  const errorBox = document.getElementById("op-error");
  const cancelForm = document.getElementById("cancel-form");
  const INTERVAL_MS = 1000;
  const MAX_INTERVAL_MS = 30000;
  let after = Number(root.dataset.after || 0);
  let delay = INTERVAL_MS;

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  function appendLines(lines) {
    if (!lines.length) {
      return;
    }
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const span = document.createElement("span");
      span.className = `line level-${line.level}` + (line.level === "error" ? " error" : "");
      span.dataset.id = line.id;
      const time = String(line.ts || "").slice(11, 19);
      span.appendChild(
        document.createTextNode(`${time} ${String(line.level).padEnd(5)} ${line.message}\n`),
      );
      fragment.appendChild(span);
      after = Math.max(after, Number(line.id));
    }
    log.appendChild(fragment);
    const empty = document.getElementById("log-empty");
    if (empty) {
      empty.remove();
    }
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function showStatus(status) {
    const badge = statusBox ? statusBox.querySelector(".badge") : null;
    if (!badge || badge.textContent === (labels[status] || status)) {
      return;
    }
    badge.className = `badge text-bg-${colours[status] || "light"} status-${status}`;
    badge.textContent = labels[status] || status;
  }

  function showProgress(data) {
    if (!bar) {
      return;
    }
    const shown = data.progress; // {percent, text}, as the server computed it
    let name = "progress-bar";
    if (data.done) {
      name += ` bg-${colours[data.status] || "secondary"}`;
    } else if (!data.progress_total) {
      name += " progress-bar-striped progress-bar-animated";
    }
    if (bar.className !== name) {
      bar.className = name;
    }
    bar.style.width = `${shown.percent}%`;
    progress.setAttribute("aria-valuenow", String(shown.percent));
    if (progressText && progressText.textContent !== shown.text) {
      progressText.textContent = shown.text;
    }
  }

  function showFinished(data) {
    if (live) {
      live.classList.add("d-none");
    }
    if (cancelForm) {
      cancelForm.remove();
    }
    if (data.error && errorBox) {
      errorBox.textContent = data.error;
      errorBox.classList.remove("d-none");
    }
    setText("op-started", data.display.started_at);
    setText("op-finished", data.display.finished_at);
    setText("op-duration", data.display.duration);
  }

  async function poll() {
    let data;
    try {
      const response = await fetch(`${logUrl}?after=${after}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || response.redirected || !type.includes("application/json")) {
        // Logged out, or the operation is gone: following makes no sense any more.
        window.nubeSessionEnded(response);
        if (live) {
          live.classList.add("d-none");
        }
        return;
      }
      data = await response.json();
    } catch (_error) {
      // The controller restarted or the network hiccuped: try again, more slowly.
      delay = Math.min(MAX_INTERVAL_MS, delay * 2);
      window.setTimeout(poll, delay);
      return;
    }
    delay = INTERVAL_MS;
    appendLines(data.log || []);
    showStatus(data.status);
    showProgress(data);
    if (data.started_at) {
      setText("op-started", data.display.started_at);
    }
    if (data.done) {
      showFinished(data);
      return;
    }
    // The server says when a full batch left more lines waiting: fetch them at once.
    window.setTimeout(poll, data.more ? 0 : delay);
  }

  window.setTimeout(poll, INTERVAL_MS);
})();
