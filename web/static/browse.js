// Progressive enhancement only: without this file the forms post straight away, and the
// page around each one already says what it does.
// A form marked data-confirm="text" asks for confirmation before it is sent.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
