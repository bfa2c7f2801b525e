// Keeps the overview, host, VM and volume pages current without reloads. Every 3 s while the tab
// is visible it asks the small /live/ endpoints about the rows the page shows (sending the last
// ETag, so an unchanged answer is a bodiless 304) and updates badges, tasks, action buttons,
// usage bars, counts and operation progress in place. Markup comes from the server (templates,
// <template> clones), and so does every text and number (formatted, percentages rounded): this
// script only sets text nodes, attributes and classes.
(() => {
  "use strict";

  const root = document.querySelector("[data-live]");
  if (!root) {
    return;
  }
  const INTERVAL_MS = 3000;
  const MAX_INTERVAL_MS = 30000;
  const MAX_IDS = Number(root.dataset.maxIds || 200);
  const SCOPES = "[data-vm-id], [data-host-id], [data-volume], [data-live]";
  // state words' colours and labels, and the active statuses: app/states, served by base.html's body
  const served = JSON.parse(document.body.dataset.nubeStates || "{}");
  const ACTIVE = served.active || [];
  const colours = served.colours || {};
  const labels = served.labels || {};
  const operationsUrl = root.dataset.operationsUrl || "/operations/";
  // The newest operation the page showed when it loaded: every later one is shown as it comes,
  // even one that started and ended between two polls.
  const since = Number(root.dataset.since || 0);
  const LINGER_MS = 10000; // how long a finished operation stays under "In progress"
  const RECENT_ROWS = 50; // rows the recent-operations table keeps
  const etags = new Map(); // kind -> {url, tag}
  let delay = INTERVAL_MS;
  let timer = null;
  let polling = false;
  let stopped = false;

  // --- small DOM helpers ---

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function setClass(element, name) {
    if (element && element.className !== name) {
      element.className = name;
    }
  }

  // Elements matching selector whose nearest live scope is scope (a VM row inside a host page
  // belongs to the VM, not to the host).
  function within(scope, selector) {
    const found = Array.from(scope.querySelectorAll(selector));
    return found.filter((element) => element.closest(SCOPES) === scope);
  }

  function scopes(attribute) {
    const selector = `[data-${attribute}]`;
    const all = [root, ...root.querySelectorAll(selector)];
    return all.filter((element) => element.matches(selector));
  }

  // --- what changes ---

  function setBadge(element, status) {
    const badge = element.classList.contains("badge") ? element : element.querySelector(".badge");
    const text = status || "-";
    setClass(badge, `badge text-bg-${colours[status] || "light"} status-${text}`);
    setText(badge, labels[status] || text);
  }

  function spinner() {
    const span = document.createElement("span");
    span.className = "spinner-border spinner-border-sm me-1";
    span.setAttribute("role", "status");
    span.setAttribute("aria-hidden", "true");
    return span;
  }

  function setTask(element, record) {
    const value = `${record.task || ""}|${record.task_op || ""}`;
    if (element.dataset.value === value) {
      return;
    }
    element.dataset.value = value;
    element.replaceChildren();
    if (record.task) {
      element.appendChild(spinner());
      if (record.task_op) {
        const link = document.createElement("a");
        link.href = `${operationsUrl}${Number(record.task_op)}`;
        link.textContent = record.task;
        element.appendChild(link);
      } else {
        element.appendChild(document.createTextNode(record.task));
      }
    } else if (element.dataset.empty) {
      const empty = document.createElement("span");
      empty.className = "text-secondary";
      empty.textContent = element.dataset.empty;
      element.appendChild(empty);
    }
  }

  // A VM's buttons: a clone of the page's template, showing those whose data-show-when lists
  // the state; while a task runs every button is disabled and the task shows with a spinner.
  function setActions(element, vmId, record) {
    const state = record.state || "";
    const task = record.task || "";
    if (element.dataset.state === state && element.dataset.task === task) {
      return;
    }
    const template = document.getElementById("vm-actions-template");
    if (!template) {
      return;
    }
    const box = template.content.firstElementChild.cloneNode(true);
    for (const form of box.querySelectorAll("form")) {
      const action = form.getAttribute("action").replace("__vm__", encodeURIComponent(vmId));
      form.setAttribute("action", action);
      if (form.dataset.confirm) {
        form.dataset.confirm = form.dataset.confirm.replace("__vm__", vmId);
      }
    }
    for (const part of box.querySelectorAll("[data-show-when]")) {
      const words = part.dataset.showWhen.split(/\s+/);
      part.hidden = words.includes("busy") ? !task : !words.includes(state);
    }
    for (const button of box.querySelectorAll("button")) {
      button.disabled = Boolean(task);
    }
    const link = box.querySelector('[data-slot="task"]');
    if (link) {
      link.textContent = task;
      if (record.task_op) {
        link.href = `${operationsUrl}${Number(record.task_op)}`;
      }
    }
    element.replaceChildren(box);
    element.dataset.state = state;
    element.dataset.task = task;
  }

  // A volume's forms, or a VM's snapshot actions (all rendered by the server): those whose
  // data-show-when lists its state, none while a task runs, which shows instead with a spinner
  // and its operation's link.
  function setVolumeActions(element, record) {
    const state = record.state || "";
    const task = record.task || "";
    if (element.dataset.state === state && element.dataset.task === task) {
      return;
    }
    for (const part of element.querySelectorAll("[data-show-when]")) {
      const words = part.dataset.showWhen.split(/\s+/);
      part.hidden = words.includes("busy") ? !task : Boolean(task) || !words.includes(state);
    }
    const link = element.querySelector('[data-slot="task"]');
    if (link) {
      link.textContent = task;
      if (record.task_op) {
        link.href = `${operationsUrl}${Number(record.task_op)}`;
      } else {
        link.removeAttribute("href");
      }
    }
    element.dataset.state = state;
    element.dataset.task = task;
  }

  // A usage bar, from the numbers and text the server computed for it.
  function setBar(element, record) {
    const bar = (record.bars || {})[element.dataset.used];
    if (!bar) {
      return;
    }
    const verb = element.dataset.verb ? ` ${element.dataset.verb}` : "";
    const unit = element.dataset.unit ? ` ${element.dataset.unit}` : "";
    const label =
      bar.percent === null
        ? `${bar.used_text}${verb}, capacity not known yet`
        : `${bar.used_text}${verb} of ${bar.total_text}${unit} (${bar.percent}%)`;
    const progress = element.querySelector(".progress");
    const fill = element.querySelector(".progress-bar");
    setClass(fill, `progress-bar bg-${bar.colour}`);
    if (fill && fill.style.width !== `${bar.width}%`) {
      fill.style.width = `${bar.width}%`;
    }
    if (progress) {
      progress.setAttribute("aria-valuenow", String(bar.percent || 0));
    }
    setText(element.querySelector("[data-bar-label]"), label);
  }

  // One polled record (a VM, a host, the cluster totals) onto its scope's hooks.
  function applyRecord(scope, record, id) {
    for (const element of within(scope, "[data-field]")) {
      const key = element.dataset.field;
      if (!(key in record)) {
        continue;
      }
      const kind = element.dataset.format || "text";
      if (kind === "badge") {
        setBadge(element, record[key]);
      } else if (kind === "task") {
        setTask(element, record);
      } else {
        // as the server formats it; a field it does not format reads as it is ("-" for none)
        const value = key in (record.display || {}) ? record.display[key] : record[key];
        setText(element, value === null || value === undefined ? "-" : String(value));
      }
    }
    for (const element of within(scope, "[data-bar]")) {
      setBar(element, record);
    }
    if ("task" in record) {
      for (const element of within(scope, "[data-actions]")) {
        setActions(element, id, record);
      }
      for (const element of within(scope, "[data-volume-actions], [data-state-actions]")) {
        setVolumeActions(element, record);
      }
      for (const element of within(scope, "[data-disable-when-busy]")) {
        element.disabled = Boolean(record.task);
      }
    }
  }

  // A row whose VM or host no longer exists: greyed, no buttons, no longer polled.
  function markGone(scope) {
    scope.dataset.gone = "1";
    scope.classList.add("opacity-50");
    for (const element of within(scope, '[data-field][data-format="badge"]')) {
      setBadge(element, served.gone);
    }
    for (const element of within(scope, "[data-actions], [data-field][data-format='task']")) {
      element.replaceChildren();
    }
    for (const element of within(scope, "button, [data-disable-when-busy]")) {
      element.disabled = true;
    }
  }

  function applyRows(attribute, records) {
    for (const scope of scopes(attribute)) {
      if (scope.dataset.gone) {
        continue;
      }
      const id = scope.getAttribute(`data-${attribute}`);
      if (records[id]) {
        applyRecord(scope, records[id], id);
      } else {
        markGone(scope);
      }
    }
  }

  // --- the overview ---

  function fillOperation(item, op) {
    const status = op.status;
    const active = ACTIVE.includes(status);
    const shown = op.progress; // {percent, text}, as the server computed it
    const percent = shown.percent;
    const link = item.querySelector('[data-slot="link"]');
    if (link) {
      link.href = `${operationsUrl}${Number(op.id)}`;
    }
    setText(item.querySelector('[data-slot="id"]'), String(op.id));
    setText(item.querySelector('[data-slot="kind"]'), op.kind || "");
    setText(item.querySelector('[data-slot="target"]'), op.target_name || "");
    setBadge(item.querySelector('[data-slot="status"]'), status);
    let name = "progress-bar";
    if (!active) {
      name += ` bg-${colours[status] || "secondary"}`;
    } else if (!op.progress_total) {
      name += " progress-bar-striped progress-bar-animated";
    }
    const bar = item.querySelector(".progress-bar");
    setClass(bar, name);
    if (bar && bar.style.width !== `${percent}%`) {
      bar.style.width = `${percent}%`;
    }
    const progress = item.querySelector(".progress");
    if (progress) {
      progress.setAttribute("aria-valuenow", String(percent));
    }
    setText(item.querySelector('[data-slot="progress"]'), shown.text);
  }

  function fillRow(row, op) {
    for (const link of row.querySelectorAll('[data-slot="link"]')) {
      link.href = `${operationsUrl}${Number(op.id)}`;
    }
    setText(row.querySelector('[data-slot="id"]'), String(op.id));
    setText(row.querySelector('[data-slot="kind"]'), op.kind || "");
    setText(row.querySelector('[data-slot="target"]'), op.target_name || "-");
    setText(row.querySelector('[data-slot="target_type"]'), op.target_type || "");
    setText(row.querySelector('[data-slot="requested_by"]'), op.display.requested_by);
    setText(row.querySelector('[data-slot="created"]'), op.display.created_at);
  }

  // The recent-operations table's row of op: the server's, or one cloned for an operation
  // started after the page loaded (newest first); null for an older one the table lacks.
  function tableRow(op) {
    const id = Number(op.id);
    const table = document.getElementById("recent-operations");
    const template = document.getElementById("op-row-template");
    let row = root.querySelector(`tr[data-operation-id="${id}"]`);
    if (row || id <= since || !table || !template) {
      return row;
    }
    row = template.content.firstElementChild.cloneNode(true);
    row.dataset.operationId = String(id);
    fillRow(row, op);
    const body = table.tBodies[0];
    const older = Array.from(body.rows).find((other) => Number(other.dataset.operationId) < id);
    body.insertBefore(row, older || null);
    while (body.rows.length > RECENT_ROWS) {
      body.deleteRow(-1);
    }
    document.getElementById("recent-operations-box")?.classList.remove("d-none");
    document.getElementById("recent-operations-empty")?.classList.add("d-none");
    return row;
  }

  // Finished operations leave "In progress" LINGER_MS after the page first saw them ended.
  function sweepFinished(list) {
    const now = Date.now();
    for (const item of Array.from(list.children)) {
      if (item.dataset.endedAt && now - Number(item.dataset.endedAt) > LINGER_MS) {
        item.remove();
      }
    }
    const empty = document.getElementById("live-operations-empty");
    if (empty) {
      empty.classList.toggle("d-none", list.children.length > 0);
    }
  }

  function applyOperations(operations) {
    const list = document.getElementById("live-operations");
    const template = document.getElementById("op-item-template");
    for (const op of operations) {
      const id = Number(op.id);
      const row = tableRow(op);
      if (row) {
        setBadge(row, op.status);
        if (row.cells.length > 7) {
          setText(row.cells[4], op.progress.text);
          setText(row.cells[7], op.display.duration);
        }
      }
      if (!list || !template) {
        continue;
      }
      let item = list.querySelector(`[data-op-id="${id}"]`);
      if (!item && !ACTIVE.includes(op.status) && id <= since) {
        continue; // ended before the page loaded: the table has it
      }
      if (!item) {
        item = template.content.firstElementChild.cloneNode(true);
        item.dataset.opId = String(id);
        const older = Array.from(list.children).find((child) => Number(child.dataset.opId) < id);
        list.insertBefore(item, older || null);
      }
      fillOperation(item, op);
      if (!ACTIVE.includes(op.status) && !item.dataset.endedAt) {
        item.dataset.endedAt = String(Date.now());
      }
    }
    if (list) {
      const answered = new Set(operations.map((op) => String(op.id)));
      for (const item of list.children) {
        if (!answered.has(item.dataset.opId) && !item.dataset.endedAt) {
          item.dataset.endedAt = String(Date.now()); // no longer recent nor running: it ended
        }
      }
      sweepFinished(list);
    }
  }

  function applyOverview(data) {
    for (const element of root.querySelectorAll("[data-count-of]")) {
      const [group, state] = element.dataset.countOf.split(":");
      const count = Number((data[`${group}_by_state`] || {})[state] || 0);
      setText(element, String(count));
      const item = element.closest("[data-count]");
      if (item) {
        item.dataset.count = String(count);
      }
      const link = element.closest("a");
      if (link) {
        link.classList.toggle("opacity-50", !count);
      }
    }
    applyRecord(root, data.totals || {});
    applyOperations(data.operations || []);
  }

  // --- polling ---

  function ids(attribute) {
    const found = scopes(attribute)
      .filter((element) => !element.dataset.gone)
      .map((element) => element.getAttribute(`data-${attribute}`));
    return Array.from(new Set(found)).slice(0, MAX_IDS);
  }

  function jobs() {
    const list = [];
    const vmIds = ids("vm-id");
    if (root.dataset.vmsUrl && vmIds.length) {
      const query = vmIds.map(encodeURIComponent).join(",");
      list.push({
        kind: "vms",
        url: `${root.dataset.vmsUrl}?ids=${query}`,
        apply: (data) => applyRows("vm-id", data.vms || {}),
      });
    }
    const volumeNames = ids("volume");
    if (root.dataset.volumesUrl && volumeNames.length) {
      const query = volumeNames.map(encodeURIComponent).join(",");
      list.push({
        kind: "volumes",
        url: `${root.dataset.volumesUrl}?ids=${query}`,
        apply: (data) => applyRows("volume", data.volumes || {}),
      });
    }
    const hostIds = ids("host-id");
    if (root.dataset.hostsUrl && hostIds.length) {
      const query = hostIds.map(encodeURIComponent).join(",");
      list.push({
        kind: "hosts",
        url: `${root.dataset.hostsUrl}?ids=${query}`,
        apply: (data) => applyRows("host-id", data.hosts || {}),
      });
    }
    if (root.dataset.overviewUrl) {
      const url = `${root.dataset.overviewUrl}?since=${since}`;
      list.push({ kind: "overview", url, apply: applyOverview });
    }
    return list;
  }

  class Gone extends Error {}

  // The controller did not answer (restarting, or the network hiccuped): only this is worth
  // retrying. Anything else thrown while polling is a bug in this script and must show as one.
  class Unreachable extends Error {}

  async function network(promise) {
    try {
      return await promise;
    } catch (error) {
      throw new Unreachable(String(error)); // fetch's TypeError, an aborted or cut-off body
    }
  }

  async function fetchJson(job) {
    const headers = { Accept: "application/json" };
    const known = etags.get(job.kind);
    if (known && known.url === job.url) {
      headers["If-None-Match"] = known.tag;
    }
    const response = await network(
      fetch(job.url, {
        headers,
        credentials: "same-origin",
        cache: "no-store",
      }),
    );
    if (response.status === 304) {
      return null; // nothing changed since the last answer
    }
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok || response.redirected || !type.includes("application/json")) {
      window.nubeSessionEnded(response); // says so on the page when that is why
      throw new Gone(`${response.status}`); // logged out, or a bad request: stop following
    }
    const tag = response.headers.get("ETag");
    if (tag) {
      etags.set(job.kind, { url: job.url, tag });
    }
    return network(response.json());
  }

  function schedule(ms) {
    window.clearTimeout(timer);
    timer = null;
    if (!stopped && document.visibilityState === "visible") {
      timer = window.setTimeout(poll, ms);
    }
  }

  async function poll() {
    timer = null;
    if (polling || stopped) {
      return;
    }
    const list = jobs();
    if (!list.length) {
      stopped = true; // nothing on this page to follow any more
      return;
    }
    polling = true;
    try {
      const answers = await Promise.all(list.map(fetchJson));
      answers.forEach((data, index) => {
        if (data) {
          list[index].apply(data);
        }
      });
      const operations = document.getElementById("live-operations");
      if (operations) {
        sweepFinished(operations); // an unchanged answer (304) still lets finished ones go
      }
      delay = INTERVAL_MS;
    } catch (error) {
      if (error instanceof Gone) {
        stopped = true;
        return;
      }
      if (!(error instanceof Unreachable)) {
        // A programming error, not the server: stop (the page would only repeat it) and let
        // it reach the console and the page's error handlers as what it is.
        stopped = true;
        console.error("live updates stopped:", error);
        throw error;
      }
      // The controller restarted or the network hiccuped: try again, more slowly.
      delay = Math.min(MAX_INTERVAL_MS, delay * 2);
    } finally {
      polling = false;
    }
    schedule(delay);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      schedule(0); // catch up at once after the tab was hidden
    } else {
      window.clearTimeout(timer);
      timer = null;
    }
  });

  schedule(INTERVAL_MS);
})();
