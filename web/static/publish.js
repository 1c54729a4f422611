// The destination of the publish form, enhanced. Without this file the form still works: a
// plain list of client checkboxes and a select of indented folder paths.
// With it, a text filter narrows the clients (with "select all shown" and a count of those
// chosen), and the select gives way to a tree of the folders the chosen clients have
// (WAI-ARIA Authoring Practices, "Tree View": arrow keys, Home, End, Enter and Space). The
// select stays in the form, hidden, and carries the chosen path.
"use strict";

(() => {
  const fill = (text, values) =>
    text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  const number = (n) => new Intl.NumberFormat(document.documentElement.lang || undefined).format(n);

  // Clients ---------------------------------------------------------------------------------

  function clientPicker(fieldset, onChange) {
    const tools = fieldset.querySelector("[data-client-tools]");
    const filter = fieldset.querySelector("#client-filter");
    const count = fieldset.querySelector("[data-client-count]");
    const noMatch = fieldset.querySelector("[data-no-match]");
    const all = fieldset.querySelector("[data-all-clients]");
    const boxes = [...fieldset.querySelectorAll('input[name="clients"]')];
    const rows = boxes.map((box) => ({
      box,
      item: box.closest("li"),
      text: box.closest("label").textContent.trim().toLocaleLowerCase(),
    }));

    // "All my clients" means the caller's own clients, not the firm's shared spaces: the same
    // rule as the server's.
    const chosen = () =>
      new Set(
        boxes
          .filter((box) => box.checked || (all && all.checked && !box.hasAttribute("data-shared")))
          .map((box) => box.value),
      );

    const update = () => {
      const n = chosen().size;
      const text = n === 1 ? fieldset.dataset.textCountOne : fieldset.dataset.textCountMany;
      count.textContent = fill(text, { count: number(n) });
      onChange();
    };

    const applyFilter = () => {
      const query = filter.value.trim().toLocaleLowerCase();
      let shown = 0;
      for (const row of rows) {
        const match = !query || row.text.includes(query);
        row.item.hidden = !match;
        shown += match ? 1 : 0;
      }
      noMatch.hidden = shown > 0;
    };

    filter.addEventListener("input", applyFilter);
    // Enter in the filter would send the whole form: it only filters.
    filter.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
    fieldset.querySelector("[data-select-shown]").addEventListener("click", () => {
      for (const row of rows) {
        if (!row.item.hidden) row.box.checked = true;
      }
      update();
    });
    fieldset.addEventListener("change", update);
    tools.hidden = false;
    return { chosen, update };
  }

  // Folders ---------------------------------------------------------------------------------

  function folderTree(fieldset, chosenClients) {
    const text = fieldset.dataset;
    const separator = text.separator;
    const select = fieldset.querySelector("#publish-folder");
    const holder = fieldset.querySelector("[data-folder-tree]");
    const summary = fieldset.querySelector("[data-folder-summary]");
    const newFolder = fieldset.querySelector("#publish-new-folder");

    // The select's options are the tree, depth first; an option's value is its path.
    const top = { path: "", names: [], clients: new Set(), children: [], parent: null };
    const nodes = [top];
    const byPath = new Map([["", top]]);
    for (const option of select.options) {
      if (!option.value) continue;
      const names = option.value.split(separator);
      const parent = byPath.get(names.slice(0, -1).join(separator)) || top;
      const node = {
        path: option.value,
        names,
        clients: new Set((option.dataset.clients || "").split(" ").filter(Boolean)),
        children: [],
        parent,
      };
      parent.children.push(node);
      nodes.push(node);
      byPath.set(node.path, node);
    }

    // A flat tree (aria-level on each item) rather than nested groups: each item's name is
    // then its own row, not the text of every folder below it.
    const tree = document.createElement("ul");
    tree.setAttribute("role", "tree");
    tree.setAttribute("aria-label", text.textTree);
    tree.className = "tree";
    for (const node of nodes) {
      const item = document.createElement("li");
      item.setAttribute("role", "treeitem");
      item.setAttribute("aria-level", String(node.names.length + 1));
      item.setAttribute("aria-selected", "false");
      item.style.setProperty("--level", String(node.names.length));
      item.tabIndex = -1;
      const twisty = document.createElement("span");
      twisty.className = "tree__twisty";
      twisty.setAttribute("aria-hidden", "true");
      const label = document.createElement("bdi");
      label.className = "tree__label";
      label.textContent = node === top ? text.textTop : node.names[node.names.length - 1];
      const badge = document.createElement("span");
      badge.className = "badge badge--muted tree__badge";
      badge.hidden = true;
      item.append(twisty, label, badge);
      item.addEventListener("click", (event) => {
        if (event.target === twisty && node.children.length) {
          setExpanded(node, !node.open);
        } else {
          choose(node);
        }
        item.focus();
      });
      node.item = item;
      node.badge = badge;
      tree.append(item);
    }
    holder.append(tree);

    let current = byPath.get(select.value) || top;

    // Shown: the chosen clients' folders (and the picked one, and folders no client has yet,
    // which the form offers to create), inside open folders only.
    const wanted = (node, chosen) =>
      node === top ||
      node === current ||
      node.clients.size === 0 ||
      [...chosen].some((id) => node.clients.has(id)) ||
      node.children.some((child) => wanted(child, chosen));

    const layout = () => {
      const chosen = chosenClients();
      for (const node of nodes) {
        const shown = wanted(node, chosen) && (!node.parent || (!node.parent.item.hidden && node.parent.open));
        node.item.hidden = !shown;
        const branch = node.children.some((child) => wanted(child, chosen));
        node.item.classList.toggle("tree__item--branch", branch);
        if (branch) node.item.setAttribute("aria-expanded", String(Boolean(node.open)));
        else node.item.removeAttribute("aria-expanded");
        if (node === top) continue;
        const have = [...chosen].filter((id) => node.clients.has(id)).length;
        node.badge.hidden = chosen.size === 0 || have === chosen.size;
        node.badge.textContent =
          have === 0
            ? text.textNew
            : fill(text.textPartial, { have: number(have), total: number(chosen.size) });
      }
    };

    const setExpanded = (node, open) => {
      node.open = open;
      layout();
    };

    const focusable = (node) => {
      for (const other of nodes) other.item.tabIndex = -1;
      node.item.tabIndex = 0;
    };

    // The summary says where the files go, and for how many chosen clients that folder is new.
    const describe = () => {
      const chosen = chosenClients();
      const extra = newFolder.value.trim();
      const names = [...current.names, ...(extra ? [extra] : [])];
      if (!chosen.size) {
        summary.textContent = text.textNoClients;
      } else if (!names.length) {
        summary.textContent = text.textTopOnly;
      } else {
        const have = extra ? 0 : [...chosen].filter((id) => current.clients.has(id)).length;
        const key = have === chosen.size ? "textAll" : have === 0 ? "textNone" : "textSome";
        summary.textContent = fill(text[key], {
          // The sentence isolates it already (the page's translations wrap every value).
          folder: names.join(" › "),
          have: number(have),
          total: number(chosen.size),
        });
      }
    };

    const choose = (node) => {
      current.item.setAttribute("aria-selected", "false");
      current = node;
      node.item.setAttribute("aria-selected", "true");
      select.value = node.path;
      focusable(node);
      describe();
    };

    // The picked folder starts in view.
    top.open = true;
    for (let node = current.parent; node; node = node.parent) node.open = true;
    layout();
    choose(current);

    tree.addEventListener("keydown", (event) => {
      const node = nodes.find((n) => n.item === event.target);
      if (!node) return;
      const list = nodes.filter((n) => !n.item.hidden);
      const at = list.indexOf(node);
      const branch = node.item.hasAttribute("aria-expanded");
      const rtl = getComputedStyle(tree).direction === "rtl";
      let next = null;
      switch (event.key) {
        case "ArrowDown":
          next = list[at + 1];
          break;
        case "ArrowUp":
          next = list[at - 1];
          break;
        case "Home":
          next = list[0];
          break;
        case "End":
          next = list[list.length - 1];
          break;
        case rtl ? "ArrowLeft" : "ArrowRight":
          if (branch && !node.open) setExpanded(node, true);
          else if (branch) next = nodes.filter((n) => !n.item.hidden)[at + 1];
          break;
        case rtl ? "ArrowRight" : "ArrowLeft":
          if (branch && node.open) setExpanded(node, false);
          else if (node.parent) next = node.parent;
          break;
        case "Enter":
        case " ":
          choose(node);
          break;
        default:
          return;
      }
      event.preventDefault();
      if (next) {
        focusable(next);
        next.item.focus();
      }
    });

    newFolder.addEventListener("input", describe);
    fieldset.querySelector("[data-folder-select]").hidden = true;
    holder.hidden = false;
    summary.hidden = false;
    return () => {
      layout();
      describe();
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    const clients = document.querySelector("[data-client-picker]");
    const destination = document.querySelector("[data-destination]");
    if (!clients || !destination) return;
    let refresh = () => {};
    const picker = clientPicker(clients, () => refresh());
    refresh = folderTree(destination, picker.chosen);
    picker.update();
  });
})();
