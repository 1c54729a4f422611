// Progressive enhancement only: without this file the forms post straight away, and the
// page around each one already says what it does.
// A form marked data-confirm="text" asks for confirmation before it is sent; so does a
// submit button marked so (the selection's "Move selected to trash").
// The selection form (data-selection): a select-all box, and its buttons enabled only
// while at least one document is selected.
"use strict";

function setUpSelection(form) {
  const boxes = Array.from(form.querySelectorAll('input[type="checkbox"][name="document_id"]'));
  const all = form.querySelector("input[data-select-all]");
  const buttons = form.querySelectorAll("[data-needs-selection]");
  const update = () => {
    const picked = boxes.filter((box) => box.checked).length;
    for (const button of buttons) {
      button.disabled = picked === 0;
    }
    if (all) {
      all.checked = picked > 0 && picked === boxes.length;
      all.indeterminate = picked > 0 && picked < boxes.length;
    }
  };
  if (all) {
    all.hidden = false;
    all.addEventListener("change", () => {
      for (const box of boxes) {
        box.checked = all.checked;
      }
      update();
    });
  }
  for (const box of boxes) {
    box.addEventListener("change", update);
  }
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", (event) => {
      const asking = event.submitter?.dataset.confirm ?? form.dataset.confirm;
      if (asking !== undefined && !window.confirm(asking)) {
        event.preventDefault();
      }
    });
  }
  for (const form of document.querySelectorAll("form[data-selection]")) {
    setUpSelection(form);
  }
});
