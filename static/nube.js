// Nube's dashboard behaviour: confirmations before destructive POSTs, copy buttons.
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
