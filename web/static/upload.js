// Drag-and-drop and file-picker uploads through the resumable upload API (tus 1.0.0 at
// /api/v1/uploads, with the vendored tus-js-client).
//
// Progressive enhancement: without this file the panel is a plain multipart form. With it,
// each file goes up in chunks of the size the server advertises (ClientVault-Chunk-Size: the
// server stores whole encrypted parts only), survives dropped connections (retries, and a
// restart when the browser is back online), and survives a reload or a closed tab: the
// upload's URL is kept in localStorage under the file's fingerprint, so choosing the same
// file again continues from the server's offset rather than from zero.
//
// Every word shown comes from the panel's data-text-* attributes (translated on the server);
// "{name}"-style placeholders in them are filled here. Rows carry data-upload-name and
// data-state (uploading | paused | done | error) for tests and styles.
"use strict";

(() => {
  const panel = document.getElementById("upload-panel");
  if (!panel || !window.tus || !window.tus.isSupported || !window.fetch) {
    return;
  }
  const tus = window.tus;
  const form = panel.querySelector(".upload-form");
  const input = panel.querySelector(".upload-input");
  const dropZone = panel.querySelector("[data-upload-drop]");
  const list = panel.querySelector("[data-upload-list]");
  const live = panel.querySelector("[data-upload-live]");
  const overall = panel.querySelector("[data-upload-overall]");
  const overallBar = panel.querySelector("[data-upload-overall-progress]");
  const overallMeta = panel.querySelector("[data-upload-overall-meta]");
  const overallLabel = panel.querySelector("[data-upload-overall-label]");
  const resumeBox = panel.querySelector("[data-upload-resume]");
  const resumeList = panel.querySelector("[data-upload-resume-list]");
  const folderId = panel.dataset.folderId;
  const endpoint = new URL(panel.dataset.endpoint, window.location.href).href;
  const csrfField = form.querySelector('input[name="csrf_token"]');
  const csrfToken = csrfField ? csrfField.value : "";
  // Form fields sent as tus metadata with every file (an upload link's visitor gives a
  // name and an email address); they must be valid before any file starts.
  const extraFields = (panel.dataset.extraFields || "").split(",").filter(Boolean);
  const storage = tus.canStoreURLs ? tus.defaultOptions.urlStorage : null;
  const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    maximumFractionDigits: 1,
  });
  // Fallback when the OPTIONS answer is unreadable: the server's default chunk (64 MiB).
  const DEFAULT_CHUNK = Number(panel.dataset.chunkSize) || 64 * 1024 * 1024;
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];
  const SPEED_WINDOW_MS = 5000;

  let uploadIds = 0;
  let batch = []; // the files whose progress the overall bar shows
  const items = new Set();

  // --- Words ------------------------------------------------------------------------------

  function t(key, values = {}) {
    const template = panel.dataset["text" + key[0].toUpperCase() + key.slice(1)] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) =>
      name in values ? String(values[name]) : whole,
    );
  }

  function formatSize(bytes) {
    const units = [
      ["unitTb", 2 ** 40],
      ["unitGb", 2 ** 30],
      ["unitMb", 2 ** 20],
      ["unitKb", 2 ** 10],
    ];
    for (const [unit, scale] of units) {
      if (bytes >= scale) {
        return t(unit, { n: numbers.format(bytes / scale) });
      }
    }
    return t("unitB", { n: numbers.format(bytes) });
  }

  function formatDuration(seconds) {
    const whole = Math.max(1, Math.ceil(seconds));
    if (whole >= 3600) {
      const hours = Math.floor(whole / 3600);
      const minutes = Math.ceil((whole % 3600) / 60);
      return `${t("hours", { n: numbers.format(hours) })} ${t("minutes", { n: numbers.format(minutes) })}`;
    }
    if (whole >= 60) {
      return t("minutes", { n: numbers.format(Math.ceil(whole / 60)) });
    }
    return t("seconds", { n: numbers.format(whole) });
  }

  let announceTimer = null;
  function announce(message) {
    // Emptied first, so the same sentence twice is read twice.
    live.textContent = "";
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => {
      live.textContent = message;
    }, 100);
  }

  // --- Server limits ----------------------------------------------------------------------

  let limitsPromise = null;
  function serverLimits() {
    if (!limitsPromise) {
      limitsPromise = fetch(endpoint, { method: "OPTIONS", credentials: "same-origin" })
        .then((response) => ({
          chunkSize: Number(response.headers.get("ClientVault-Chunk-Size")) || DEFAULT_CHUNK,
          maxSize: Number(response.headers.get("Tus-Max-Size")) || Infinity,
        }))
        .catch(() => {
          limitsPromise = null; // asked again for the next file
          return { chunkSize: DEFAULT_CHUNK, maxSize: Infinity };
        });
    }
    return limitsPromise;
  }

  // --- Resuming after a reload ------------------------------------------------------------

  // The same file in the same folder (and to the same server) is the same upload.
  function fingerprint(file) {
    return Promise.resolve(
      ["clientvault", endpoint, folderId, file.name, file.type, file.size, file.lastModified].join(
        "|",
      ),
    );
  }

  async function storedUploads() {
    if (!storage) {
      return [];
    }
    const all = await storage.findAllUploads();
    return all.filter((entry) => entry.metadata && entry.metadata.folder_id === folderId);
  }

  async function showUnfinished() {
    const inUse = new Set();
    for (const item of items) {
      if (item.storageKey) {
        inUse.add(item.storageKey);
      }
      if (item.upload && item.upload.url) {
        inUse.add(item.upload.url);
      }
    }
    const waiting = (await storedUploads()).filter(
      (entry) => !inUse.has(entry.urlStorageKey) && !inUse.has(entry.uploadUrl),
    );
    resumeList.replaceChildren();
    for (const entry of waiting) {
      const row = document.createElement("li");
      row.className = "upload-resume__item";
      row.dataset.resumeName = entry.metadata.filename || "";
      const label = document.createElement("span");
      label.className = "upload-resume__name";
      label.textContent = entry.metadata.filename || "";
      const size = document.createElement("span");
      size.className = "upload-resume__size";
      size.textContent = formatSize(entry.size || 0);
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "button button--quiet";
      forget.textContent = t("forget");
      label.id = `upload-resume-${++uploadIds}`;
      forget.setAttribute("aria-describedby", label.id);
      forget.addEventListener("click", async () => {
        await forgetStored(entry);
        showUnfinished();
      });
      row.append(label, size, forget);
      resumeList.append(row);
    }
    resumeBox.hidden = waiting.length === 0;
  }

  async function forgetStored(entry) {
    await storage.removeUpload(entry.urlStorageKey);
    if (entry.uploadUrl) {
      try {
        // tus termination: the server drops the parts stored so far.
        await fetch(entry.uploadUrl, {
          method: "DELETE",
          credentials: "same-origin",
          headers: { "Tus-Resumable": "1.0.0", "X-CSRF-Token": csrfToken },
        });
      } catch {
        // Left to expire on the server.
      }
    }
  }

  // --- One file ---------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function createRow(item) {
    const id = `upload-item-${++uploadIds}`;
    const row = element("li", "upload-item");
    row.dataset.uploadName = item.file.name;
    row.dataset.state = "uploading";
    const head = element("div", "upload-item__head");
    const name = element("span", "upload-item__name", item.file.name);
    name.id = `${id}-name`;
    item.status = element("span", "upload-item__status", t("waiting"));
    head.append(name, item.status);
    item.bar = element("progress", "upload-progress");
    item.bar.max = Math.max(1, item.file.size);
    item.bar.value = 0;
    item.bar.setAttribute("aria-label", t("progressOf", { name: item.file.name }));
    item.meta = element("p", "upload-item__meta", t("bytesOf", {
      done: formatSize(0),
      total: formatSize(item.file.size),
    }));
    const actions = element("div", "upload-item__actions");
    item.pauseButton = element("button", "button button--quiet", t("pause"));
    item.pauseButton.type = "button";
    item.pauseButton.setAttribute("aria-describedby", name.id);
    item.pauseButton.addEventListener("click", () => togglePause(item));
    item.cancelButton = element("button", "button button--danger", t("cancel"));
    item.cancelButton.type = "button";
    item.cancelButton.setAttribute("aria-describedby", name.id);
    item.cancelButton.addEventListener("click", () => cancel(item));
    actions.append(item.pauseButton, item.cancelButton);
    row.append(head, item.bar, item.meta, actions);
    item.row = row;
    list.append(row);
  }

  function setState(item, state, statusText) {
    item.state = state;
    item.row.dataset.state = state;
    item.status.textContent = statusText;
    if (state === "paused" || state === "error") {
      item.pauseButton.textContent = state === "error" ? t("retry") : t("resume");
    } else {
      item.pauseButton.textContent = t("pause");
    }
    item.pauseButton.hidden = state === "done" || !item.upload;
    item.cancelButton.hidden = state === "done";
    item.samples = [];
    if (state === "paused" || state === "error") {
      // No speed or time left for a file that is not moving.
      item.meta.textContent = t("bytesOf", {
        done: formatSize(item.sent || 0),
        total: formatSize(item.file.size),
      });
    }
    updateOverall();
  }

  function onProgress(item, sent, total) {
    const now = performance.now();
    if (item.sent !== undefined && sent < item.sent) {
      item.samples = []; // a retry went back to the last stored part
    }
    item.sent = sent;
    item.samples.push([now, sent]);
    while (item.samples.length > 2 && now - item.samples[0][0] > SPEED_WINDOW_MS) {
      item.samples.shift();
    }
    item.bar.value = sent;
    const parts = [t("bytesOf", { done: formatSize(sent), total: formatSize(total) })];
    const speed = speedOf(item);
    if (speed > 0) {
      parts.push(t("speed", { size: formatSize(speed) }));
      parts.push(t("left", { time: formatDuration((total - sent) / speed) }));
    }
    item.meta.textContent = parts.join(" · ");
    if (item.state !== "uploading" || item.status.textContent !== t("uploading")) {
      item.status.textContent = t("uploading");
    }
    updateOverall();
  }

  function speedOf(item) {
    const samples = item.samples || [];
    if (item.state !== "uploading" || samples.length < 2) {
      return 0;
    }
    const [t0, b0] = samples[0];
    const [t1, b1] = samples[samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  function reasonOf(error) {
    const response = error && error.originalResponse;
    if (!response) {
      return t("network");
    }
    try {
      const problem = JSON.parse(response.getBody());
      if (problem && typeof problem.detail === "string" && problem.detail) {
        return problem.detail;
      }
      if (problem && typeof problem.title === "string") {
        return problem.title;
      }
    } catch {
      // Not problem+json: the status line says enough.
    }
    return String(response.getStatus());
  }

  function shouldRetry(error) {
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    const transient = !(status >= 400 && status < 500) || status === 409 || status === 423;
    return transient && navigator.onLine;
  }

  async function start(item) {
    const limits = await serverLimits();
    if (item.file.size > limits.maxSize) {
      fail(item, t("tooLarge", { size: formatSize(limits.maxSize) }));
      return;
    }
    item.upload = new tus.Upload(item.file, {
      endpoint,
      chunkSize: limits.chunkSize,
      retryDelays: RETRY_DELAYS,
      metadata: {
        filename: item.file.name,
        folder_id: folderId,
        filetype: item.file.type || "application/octet-stream",
        ...extraMetadata(),
      },
      headers: { "X-CSRF-Token": csrfToken },
      fingerprint,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onShouldRetry(error) {
        const retry = shouldRetry(error);
        if (retry && item.state === "uploading") {
          item.status.textContent = t("retrying");
        }
        return retry;
      },
      onProgress: (sent, total) => onProgress(item, sent, total),
      onChunkComplete: () => showUnfinished(),
      onSuccess: () => succeed(item),
      onError: (error) => {
        if (!error.originalResponse && !navigator.onLine) {
          // Picked up again by the "online" listener below.
          item.offline = true;
          setState(item, "paused", t("offline"));
          return;
        }
        fail(item, reasonOf(error));
      },
    });
    const previous = await item.upload.findPreviousUploads();
    if (previous.length > 0) {
      item.storageKey = previous[0].urlStorageKey;
      item.upload.resumeFromPreviousUpload(previous[0]);
      announce(t("fileResumed", { name: item.file.name }));
    }
    if (item.state === "cancelled") {
      return;
    }
    setState(item, "uploading", previous.length > 0 ? t("resuming") : t("uploading"));
    item.upload.start();
    showUnfinished();
  }

  function succeed(item) {
    item.bar.max = Math.max(1, item.file.size);
    item.bar.value = item.bar.max;
    item.meta.textContent = formatSize(item.file.size);
    setState(item, "done", t("done"));
    announce(t("fileDone", { name: item.file.name }));
    finishBatchIfIdle();
  }

  function fail(item, reason) {
    setState(item, "error", t("failedReason", { reason }));
    announce(t("fileFailed", { name: item.file.name, reason }));
    finishBatchIfIdle();
  }

  function togglePause(item) {
    if (!item.upload) {
      return;
    }
    if (item.state === "uploading") {
      item.upload.abort();
      setState(item, "paused", t("paused"));
      announce(t("filePaused", { name: item.file.name }));
      finishBatchIfIdle();
    } else if (item.state === "paused" || item.state === "error") {
      item.offline = false;
      setState(item, "uploading", t("resuming"));
      item.upload.start();
    }
  }

  async function cancel(item) {
    const previous = item.state;
    item.state = "cancelled";
    item.row.dataset.state = "cancelled";
    items.delete(item);
    batch = batch.filter((other) => other !== item);
    item.row.remove();
    announce(t("fileCancelled", { name: item.file.name }));
    if (item.upload && previous !== "done") {
      try {
        await item.upload.abort(true); // tus termination (DELETE)
      } catch {
        // The server forgets it when it expires.
      }
    }
    updateOverall();
    finishBatchIfIdle();
    showUnfinished();
  }

  // --- Many files -------------------------------------------------------------------------

  function extraMetadata() {
    const values = {};
    for (const name of extraFields) {
      const field = form.elements.namedItem(name);
      if (field && "value" in field) {
        values[name] = field.value;
      }
    }
    return values;
  }

  function addFiles(files) {
    if (extraFields.length && files.length && !form.reportValidity()) {
      return; // the browser shows which field is missing
    }
    const fresh = [];
    for (const file of files) {
      const busy = [...items].some(
        (item) =>
          item.state !== "done" &&
          item.file.name === file.name &&
          item.file.size === file.size &&
          item.file.lastModified === file.lastModified,
      );
      if (busy) {
        continue; // already on its way
      }
      const item = { file, state: "uploading", samples: [] };
      items.add(item);
      batch.push(item);
      createRow(item);
      fresh.push(item);
    }
    if (fresh.length === 0) {
      return;
    }
    if (fresh.length > 1) {
      announce(t("started", { count: numbers.format(fresh.length) }));
    }
    overall.hidden = false;
    updateOverall();
    for (const item of fresh) {
      start(item).catch((error) => fail(item, reasonOf(error)));
    }
  }

  function updateOverall() {
    if (batch.length === 0) {
      return;
    }
    let total = 0;
    let sent = 0;
    let speed = 0;
    let done = 0;
    for (const item of batch) {
      total += item.file.size;
      sent += item.state === "done" ? item.file.size : item.sent || 0;
      speed += speedOf(item);
      if (item.state === "done") {
        done += 1;
      }
    }
    overallBar.max = Math.max(1, total);
    overallBar.value = sent;
    overallLabel.textContent = t("overall", {
      done: numbers.format(done),
      count: numbers.format(batch.length),
    });
    const parts = [t("bytesOf", { done: formatSize(sent), total: formatSize(total) })];
    if (speed > 0) {
      parts.push(t("speed", { size: formatSize(speed) }));
      parts.push(t("left", { time: formatDuration((total - sent) / speed) }));
    }
    overallMeta.textContent = parts.join(" · ");
  }

  async function finishBatchIfIdle() {
    const busy = batch.some((item) => item.state === "uploading" || item.state === "paused");
    if (busy || batch.length === 0) {
      return;
    }
    const anyDone = batch.some((item) => item.state === "done");
    updateOverall();
    batch = [];
    if (anyDone) {
      await refreshListing();
      announce(t("allDone"));
    }
    showUnfinished();
  }

  async function refreshListing() {
    const current = document.getElementById("folder-listing");
    if (!current) {
      return;
    }
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) {
        return;
      }
      // The page's own markup, from the same origin; DOMParser runs no script in it.
      const fetched = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = fetched.getElementById("folder-listing");
      if (fresh) {
        current.replaceWith(document.importNode(fresh, true));
      }
    } catch {
      // The listing stays as it was; a reload shows the new files.
    }
  }

  // --- Picking and dropping ---------------------------------------------------------------

  function hasFiles(event) {
    return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
  }

  function droppedFiles(dataTransfer) {
    const files = [];
    let folders = 0;
    if (dataTransfer.items && dataTransfer.items.length) {
      for (const entry of dataTransfer.items) {
        if (entry.kind !== "file") {
          continue;
        }
        const fsEntry = entry.webkitGetAsEntry ? entry.webkitGetAsEntry() : null;
        if (fsEntry && fsEntry.isDirectory) {
          folders += 1;
          continue;
        }
        const file = entry.getAsFile();
        if (file) {
          files.push(file);
        }
      }
    } else {
      files.push(...dataTransfer.files);
    }
    if (folders > 0) {
      announce(t("noFolders"));
    }
    return files;
  }

  dropZone.addEventListener("dragenter", (event) => {
    if (hasFiles(event)) {
      event.preventDefault();
      dropZone.classList.add("upload-drop--over");
    }
  });
  dropZone.addEventListener("dragover", (event) => {
    if (hasFiles(event)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("upload-drop--over");
    }
  });
  dropZone.addEventListener("dragleave", (event) => {
    if (!dropZone.contains(event.relatedTarget)) {
      dropZone.classList.remove("upload-drop--over");
    }
  });
  dropZone.addEventListener("drop", (event) => {
    if (!event.dataTransfer) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    dropZone.classList.remove("upload-drop--over");
    addFiles(droppedFiles(event.dataTransfer));
  });
  // A file dropped just beside the zone would make the browser leave the page (and its
  // uploads) to show the file.
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event) && !dropZone.contains(event.target)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "none";
    }
  });
  document.addEventListener("drop", (event) => {
    if (hasFiles(event) && !dropZone.contains(event.target)) {
      event.preventDefault();
    }
  });

  input.addEventListener("change", () => {
    addFiles(Array.from(input.files));
    input.value = ""; // so that choosing the same file again is a change
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    addFiles(Array.from(input.files));
    input.value = "";
  });

  window.addEventListener("online", () => {
    for (const item of items) {
      if (item.offline && item.state === "paused") {
        item.offline = false;
        setState(item, "uploading", t("resuming"));
        item.upload.start();
      }
    }
  });

  panel.classList.add("upload-panel--enhanced");
  const submit = form.querySelector(".upload-submit");
  if (submit) {
    submit.hidden = true;
  }
  showUnfinished();
})();
