// The VM create form: shows what the chosen image is (OS, format, virtual size, read from the
// card's data-images, which the page renders from the images service) and proposes a disk no
// smaller than the image, as the service requires. Text only: values go in with textContent.
(() => {
  "use strict";

  const card = document.getElementById("image-facts");
  const form = document.getElementById("vm-form");
  if (!card || !form) {
    return;
  }
  const images = JSON.parse(card.dataset.images || "{}");
  const select = form.querySelector("select[name=image]");
  const disk = form.querySelector("input[name=disk]");

  function humanBytes(value) {
    // the same figure as the pages' |bytes filter (app/formats.py)
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let size = value;
    for (const unit of units) {
      if (size < 1024 || unit === "TiB") {
        return unit === "B" ? `${size.toFixed(0)} ${unit}` : `${size.toFixed(1)} ${unit}`;
      }
      size /= 1024;
    }
    return String(size);
  }

  function show(name, propose) {
    const facts = images[name];
    if (!facts) {
      return;
    }
    const shown = {
      name,
      os: facts.os || "not recorded",
      format: facts.format,
      virtual_size: humanBytes(facts.virtual_size),
      disk: String(facts.disk),
    };
    for (const [key, text] of Object.entries(shown)) {
      const node = card.querySelector(`[data-fact="${key}"]`);
      if (node) {
        node.textContent = text;
      }
    }
    if (disk) {
      disk.min = String(facts.disk);
      const current = Number.parseInt(disk.value, 10);
      if (propose || Number.isNaN(current) || current < facts.disk) {
        disk.value = String(facts.disk);
      }
    }
  }

  if (select) {
    let edited = false;
    if (disk) {
      disk.addEventListener("input", () => {
        edited = true;
      });
    }
    select.addEventListener("change", () => show(select.value, !edited));
    show(select.value, false);
  }
})();
