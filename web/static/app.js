// Progressive enhancement only: every page works without this file.
// Buttons marked data-copy="ID" copy the text of element ID to the clipboard; they stay
// hidden where the Clipboard API is missing, since they would do nothing there.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) {
    return;
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const target = document.getElementById(button.dataset.copy);
    if (!target) {
      continue;
    }
    const label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const items = target.querySelectorAll("li");
      const text = items.length
        ? Array.from(items, (item) => item.textContent.trim()).join("\n")
        : target.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "\u2713 " + label;
      } catch {
        button.textContent = label;
      }
    });
  }
});

// A language chosen from the list applies at once; the button is for browsers without
// scripts.
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    const fallback = select.form.querySelector("[data-autosubmit-fallback]");
    if (fallback) {
      fallback.hidden = true;
    }
    select.addEventListener("change", () => select.form.requestSubmit());
  }
});

// Buttons marked data-print print the page; without scripts they stay hidden.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
