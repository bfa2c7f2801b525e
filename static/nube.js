// Nube's dashboard behaviour: confirmations before destructive POSTs, copy buttons, and the
// notice a live page shows when its session ended.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A button with data-copy="ID" copies that field's value (a new API token) and says so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  const field = document.getElementById(button.dataset.copy);
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  } catch {
    // no clipboard API (a page over plain http): the value stays selected for Ctrl-C
    button.textContent = "Press Ctrl-C";
  }
});

// Whether a poll's answer says the session ended (the dashboard's /live/ polls answer 401, the
// others are sent to the login page); if so the page says it, once, with a link that logs in
// and comes back here. The live scripts stop polling then.
window.nubeSessionEnded = (response) => {
  const toLogin = response.redirected && new URL(response.url).pathname.endsWith("/login");
  if (response.status !== 401 && !toLogin) {
    return false;
  }
  const template = document.getElementById("session-ended-template");
  if (template && !document.getElementById("session-ended")) {
    const notice = template.content.firstElementChild.cloneNode(true);
    const link = notice.querySelector("a");
    const here = window.location.pathname + window.location.search;
    link.href = `${link.getAttribute("href")}?next=${encodeURIComponent(here)}`;
    document.querySelector("main").prepend(notice);
  }
  return true;
};
