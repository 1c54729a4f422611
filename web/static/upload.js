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
// One component, any number of panels per page: every element marked data-upload-panel is
// one. A panel's target is its data-endpoint and the tus metadata it sends with each file:
// data-metadata (a JSON object, e.g. {"request_item_id": "…"}) or else data-folder-id. A
// panel with data-page-drop takes files dropped anywhere in that element (with an overlay);
// one with a folder input (data-upload-folder-input) takes whole folders, sending each file's
// place in the tree as `relative_path`. data-refresh names the elements outside the panel
// (ids separated by spaces) that are fetched again when a batch is done. While any upload
// runs, leaving the page asks first.
//
// Every word shown comes from data-text-* attributes (translated on the server), on the panel
// or on an ancestor shared by several panels; "{name}"-style placeholders in them are filled
// here. Rows carry data-upload-name and data-state (uploading | paused | done | error) for
// tests and styles.
"use strict";

(() => {
  if (!window.tus || !window.tus.isSupported || !window.fetch) {
    return;
  }
  const tus = window.tus;
  // The elements where a file may be dropped, and what each panel says is busy.
  const dropTargets = new Set();
  const controllers = [];
  // Ids of rows, shared by all panels so that they stay unique in the page.
  let uploadIds = 0;

  const MiB = 1024 * 1024;
  // A file up to this size goes up with the request that creates its upload (tus
  // creation-with-upload): one request instead of two. Its upload's address comes only with
  // the answer, so a connection lost on the way starts it again from zero: cheap for a file
  // this small.
  const WHOLE_IN_ONE_REQUEST = 8 * MiB;
  // A proxy or CDN in front of the server may refuse request bodies smaller than the chunks
  // the server advertises (Cloudflare's limit is 100 MB on its lower plans) with a 413. An
  // upload so refused goes on from the server's offset in chunks half the size, down to
  // MIN_CHUNK, and every later upload from this tab starts at the size that went through.
  const MIN_CHUNK = MiB;
  const CEILING_KEY = "clientvault-chunk-ceiling";
  let chunkCeiling = Infinity;
  try {
    chunkCeiling = Number(window.sessionStorage.getItem(CEILING_KEY)) || Infinity;
  } catch {
    // Storage refused (privacy settings): each page finds the size again.
  }

  // Whether `upload` was refused a body for its size and now goes on in smaller chunks.
  function retryInSmallerChunks(upload, error) {
    const request = error && error.originalRequest;
    const response = error && error.originalResponse;
    if (!request || !response || response.getStatus() !== 413) {
      return false;
    }
    // The server's own 413s (a quota, the upload's length) come as problem+json: smaller
    // chunks would not help.
    if ((response.getHeader("Content-Type") || "").includes("problem+json")) {
      return false;
    }
    const withFile = request.getMethod() === "POST" && upload.options.uploadDataDuringCreation;
    if (request.getMethod() !== "PATCH" && !withFile) {
      return false;
    }
    // What the request carried (a small file's whole length), halved in whole MiB.
    const sent = Math.min(upload.options.chunkSize, upload.file.size);
    if (!(sent > MIN_CHUNK)) {
      return false;
    }
    const smaller = Math.max(MIN_CHUNK, Math.floor(sent / 2 / MiB) * MiB);
    upload.options.chunkSize = smaller;
    // A refused POST made no upload: it is made again, without the file.
    upload.options.uploadDataDuringCreation = false;
    if (smaller < chunkCeiling) {
      chunkCeiling = smaller;
      try {
        window.sessionStorage.setItem(CEILING_KEY, String(smaller));
      } catch {
        // As above.
      }
    }
    upload.start(); // from the server's offset (a HEAD first), or a new upload after a POST
    return true;
  }

  function setupPanel(panel) {
    // A panel inside a form that posts more than files (publishing) uses that form.
    const form = panel.querySelector(".upload-form") || panel.closest("form");
    // Deferred: chosen files wait for the form's submit, which asks the server for the
    // target first (the form posted with `prepare`), uploads the files there, then posts
    // the form with the uploaded documents' ids in `uploaded` instead of the files.
    const deferred = panel.hasAttribute("data-upload-deferred");
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
    const folderInput = panel.querySelector("[data-upload-folder-input]");
    const folderLabel = panel.querySelector("[data-upload-folder-label]");
    const words = panel.hasAttribute("data-text-uploading")
      ? panel
      : panel.closest("[data-text-uploading]") || panel;
    const target = panel.dataset.metadata
      ? JSON.parse(panel.dataset.metadata)
      : { folder_id: panel.dataset.folderId };
    const endpoint = new URL(panel.dataset.endpoint, window.location.href).href;
    const csrfField =
      form.querySelector('input[name="csrf_token"]') ||
      document.querySelector('input[name="csrf_token"]');
    const csrfToken = csrfField ? csrfField.value : "";
    // Form fields sent as tus metadata with every file (an upload link's visitor gives a
    // name and an email address); they must be valid before any file starts.
    const extraFields = (panel.dataset.extraFields || "").split(",").filter(Boolean);
    const storage = tus.canStoreURLs ? tus.defaultOptions.urlStorage : null;
    const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      maximumFractionDigits: 1,
    });
    // Fallback when the OPTIONS answer is unreadable: 64 MiB, under common proxies' limits.
    const DEFAULT_CHUNK = 64 * MiB;
    const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];
    const SPEED_WINDOW_MS = 5000;

    let batch = []; // the files whose progress the overall bar shows
    const items = new Set();

    // --- Words ------------------------------------------------------------------------------

    function t(key, values = {}) {
      const template = words.dataset["text" + key[0].toUpperCase() + key.slice(1)] ?? key;
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

    // The same file for the same target, at the same place in a dropped tree (and to the
    // same server), is the same upload.
    function fingerprint(file, options) {
      const path = (options && options.metadata && options.metadata.relative_path) || "";
      return Promise.resolve(
        ["clientvault", endpoint, JSON.stringify(target), path, file.name, file.type, file.size, file.lastModified]
          .join("|"),
      );
    }

    function forThisPanel(metadata) {
      return Boolean(metadata) && Object.keys(target).every((key) => metadata[key] === target[key]);
    }

    async function storedUploads() {
      if (!storage) {
        return [];
      }
      const all = await storage.findAllUploads();
      return all.filter((entry) => forThisPanel(entry.metadata));
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
        label.dir = "auto";
        label.textContent = entry.metadata.relative_path || entry.metadata.filename || "";
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
      if (item.relativePath) {
        row.dataset.uploadPath = item.relativePath;
      }
      row.dataset.state = "uploading";
      const head = element("div", "upload-item__head");
      const name = element("bdi", "upload-item__name", item.relativePath || item.file.name);
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
      const chunkSize = Math.min(limits.chunkSize, chunkCeiling);
      item.upload = new tus.Upload(item.file, {
        endpoint,
        chunkSize,
        // tus-js-client sends a chunk with the POST: here only a whole file.
        uploadDataDuringCreation: item.file.size <= Math.min(WHOLE_IN_ONE_REQUEST, chunkSize),
        retryDelays: RETRY_DELAYS,
        metadata: {
          filename: item.file.name,
          ...target,
          ...(item.relativePath ? { relative_path: item.relativePath } : {}),
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
        onSuccess: (payload) => {
          const last = payload && payload.lastResponse;
          item.documentId = last ? last.getHeader("Document-Id") : null;
          succeed(item);
        },
        onError: (error) => {
          if (item.state === "uploading" && retryInSmallerChunks(item.upload, error)) {
            return;
          }
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

    // `files`: File objects, or {file, relativePath} for the files of a folder.
    function addFiles(files) {
      if (extraFields.length && files.length && !form.reportValidity()) {
        return; // the browser shows which field is missing
      }
      const fresh = [];
      for (const chosen of files) {
        const file = chosen instanceof File ? chosen : chosen.file;
        const relativePath = chosen instanceof File ? "" : chosen.relativePath || "";
        const busy = [...items].some(
          (item) =>
            item.state !== "done" &&
            item.relativePath === relativePath &&
            item.file.name === file.name &&
            item.file.size === file.size &&
            item.file.lastModified === file.lastModified,
        );
        if (busy) {
          continue; // already on its way
        }
        const item = { file, relativePath, state: "uploading", samples: [] };
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
      if (deferred) {
        finishDeferred();
        return;
      }
      batch = [];
      if (anyDone) {
        await refreshListing();
        announce(t("allDone"));
      }
      showUnfinished();
    }

    async function refreshListing() {
      // data-refresh: one id, or several separated by spaces (an item and the page's counts).
      const ids = (panel.dataset.refresh || "").split(/\s+/).filter(Boolean);
      const current = ids.map((id) => document.getElementById(id)).filter(Boolean);
      if (current.length === 0) {
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
        for (const element of current) {
          const fresh = fetched.getElementById(element.id);
          if (fresh) {
            element.replaceWith(document.importNode(fresh, true));
          }
        }
      } catch {
        // The listing stays as it was; a reload shows the new files.
      }
    }

    // --- Deferred: the publishing form ------------------------------------------------------

    let posting = false;

    function postNatively(uploadedIds) {
      // The files are on the server (or the form is refused): the form goes without them.
      for (const id of uploadedIds) {
        const field = document.createElement("input");
        field.type = "hidden";
        field.name = "uploaded";
        field.value = id;
        form.append(field);
      }
      input.disabled = true;
      posting = true;
      form.submit();
    }

    function finishDeferred() {
      const failed = batch.some((item) => item.state !== "done");
      if (failed) {
        // Each row says why and offers to try again; the button publishes what is there.
        submitButtons(false);
        return;
      }
      announce(t("allDone"));
      postNatively(batch.map((item) => item.documentId).filter(Boolean));
    }

    function submitButtons(disabled) {
      for (const button of form.querySelectorAll('button[type="submit"], button:not([type])')) {
        button.disabled = disabled;
      }
    }

    async function submitDeferred(event) {
      if (posting) {
        return;
      }
      event.preventDefault();
      const pending = batch.filter((item) => item.state !== "done");
      if (pending.length) {
        // Tried again after a failure: the failed files go again, the rest stay sent.
        submitButtons(true);
        for (const item of pending) {
          cancel(item);
        }
        addFiles(pending.map((item) => item.file));
        return;
      }
      const files = Array.from(input.files);
      if (!form.reportValidity() || files.length === 0) {
        return;
      }
      submitButtons(true);
      const fields = new FormData(form);
      fields.delete(input.name);
      fields.set("prepare", "1");
      let answer = null;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: fields,
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        answer = response.ok ? await response.json() : null;
      } catch {
        answer = null;
      }
      if (!answer || !answer.folder_id) {
        postNatively([]); // the server's page says what is wrong with the form
        return;
      }
      target.folder_id = answer.folder_id;
      addFiles(files);
    }

    if (deferred) {
      form.addEventListener("submit", submitDeferred);
      showUnfinished();
      return {
        busy: () => [...items].some((item) => item.state === "uploading"),
        leaveText: () => t("leave"),
      };
    }

    // --- Picking and dropping ---------------------------------------------------------------

    function hasFiles(event) {
      return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
    }

    function readEntries(reader) {
      return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    }

    // Every file under a dropped entry, with its path from the dropped folder's parent, and
    // every folder in it with nothing inside ({emptyFolder: its path}), made on its own.
    async function filesOf(entry, prefix) {
      if (entry.isFile) {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        return [{ file, relativePath: prefix ? prefix + file.name : "" }];
      }
      const reader = entry.createReader();
      const found = [];
      let children = 0;
      // readEntries answers in batches (100 in Chromium) until it answers none.
      for (;;) {
        const batchOfEntries = await readEntries(reader);
        if (batchOfEntries.length === 0) {
          break;
        }
        children += batchOfEntries.length;
        for (const child of batchOfEntries) {
          found.push(...(await filesOf(child, `${prefix}${entry.name}/`)));
        }
      }
      if (children === 0) {
        found.push({ emptyFolder: prefix + entry.name });
      }
      return found;
    }

    // Folders of a dropped tree that hold no file: no upload names them, so each is made by
    // its path under the panel's folder.
    async function makeFolders(paths) {
      for (const path of paths) {
        const response = await fetch(
          `/api/v1/folders/${encodeURIComponent(panel.dataset.folderId)}/paths`,
          {
            method: "POST",
            credentials: "same-origin",
            headers: {
              "Content-Type": "application/json",
              Accept: "application/json",
              "X-CSRF-Token": csrfToken,
            },
            body: JSON.stringify({ path }),
          },
        );
        if (!response.ok) {
          const problem = await response.json().catch(() => ({}));
          throw new Error(problem.detail || problem.title || String(response.status));
        }
      }
    }

    function drop(dataTransfer) {
      const files = [];
      const folders = [];
      if (dataTransfer.items && dataTransfer.items.length) {
        // Read now: the items are emptied once the drop event is over.
        for (const entry of dataTransfer.items) {
          if (entry.kind !== "file") {
            continue;
          }
          const fsEntry = entry.webkitGetAsEntry ? entry.webkitGetAsEntry() : null;
          if (fsEntry && fsEntry.isDirectory) {
            folders.push(fsEntry);
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
      if (folders.length > 0 && !folderInput) {
        announce(t("noFolders"));
        folders.length = 0;
      }
      addFiles(files);
      for (const folder of folders) {
        filesOf(folder, "")
          .then(async (found) => {
            const empty = found.filter((entry) => entry.emptyFolder).map((e) => e.emptyFolder);
            const files = found.filter((entry) => !entry.emptyFolder);
            if (empty.length > 0 && panel.dataset.folderId) {
              await makeFolders(empty);
              if (files.length === 0) {
                await refreshListing();
              }
            }
            addFiles(files);
          })
          .catch((error) => announce(t("folderFailed", { reason: String(error.message || error) })));
      }
    }

    function acceptDrag(zone, event) {
      if (hasFiles(event)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        zone.classList.add("upload-drop--over");
      }
    }

    dropZone.addEventListener("dragenter", (event) => acceptDrag(dropZone, event));
    dropZone.addEventListener("dragover", (event) => acceptDrag(dropZone, event));
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
      drop(event.dataTransfer);
    });
    dropTargets.add(dropZone);

    // A drop anywhere in the page's main area lands in this panel, over an overlay that says so.
    const pageArea = panel.dataset.pageDrop ? document.querySelector(panel.dataset.pageDrop) : null;
    if (pageArea) {
      const overlay = element("div", "upload-overlay");
      overlay.hidden = true;
      overlay.setAttribute("aria-hidden", "true");
      const overlayText = element("p", "upload-overlay__text");
      const folderName = element("bdi", "", panel.dataset.folderName || "");
      const [before, after] = t("dropHere").split("{name}");
      overlayText.append(before || "", folderName, after || "");
      overlay.append(overlayText);
      document.body.append(overlay);
      const show = (event) => {
        if (hasFiles(event)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = "copy";
          overlay.hidden = false;
        }
      };
      const hide = () => {
        overlay.hidden = true;
      };
      pageArea.addEventListener("dragenter", show);
      pageArea.addEventListener("dragover", show);
      pageArea.addEventListener("dragleave", (event) => {
        if (!pageArea.contains(event.relatedTarget)) {
          hide();
        }
      });
      pageArea.addEventListener("drop", (event) => {
        hide();
        if (!hasFiles(event)) {
          return;
        }
        event.preventDefault();
        drop(event.dataTransfer);
      });
      document.addEventListener("dragend", hide);
      // The drop zone inside the area stops its drop from bubbling; seen while capturing,
      // every drop takes the overlay away, wherever in the page it lands.
      document.addEventListener("drop", hide, true);
      dropTargets.add(pageArea);
    }

    input.multiple = true;
    input.addEventListener("change", () => {
      addFiles(Array.from(input.files));
      input.value = ""; // so that choosing the same file again is a change
    });
    if (folderInput) {
      folderInput.hidden = false;
      folderLabel.hidden = false;
      folderInput.addEventListener("change", () => {
        // webkitRelativePath: "chosen-folder/sub/file.pdf".
        addFiles(
          Array.from(folderInput.files, (file) => ({
            file,
            relativePath: file.webkitRelativePath || "",
          })),
        );
        folderInput.value = "";
      });
    }
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

    return {
      busy: () => [...items].some((item) => item.state === "uploading"),
      leaveText: () => t("leave"),
    };
  }

  for (const panel of document.querySelectorAll("[data-upload-panel]")) {
    controllers.push(setupPanel(panel));
  }
  if (controllers.length === 0) {
    return;
  }

  // A file dropped beside a drop zone would make the browser leave the page (and its
  // uploads) to show the file.
  const inTarget = (node) => [...dropTargets].some((zone) => zone.contains(node));
  document.addEventListener("dragover", (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files") && !inTarget(event.target)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "none";
    }
  });
  document.addEventListener("drop", (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files") && !inTarget(event.target)) {
      event.preventDefault();
    }
  });

  // HTML §7.4.2.2 (beforeunload): the browser asks, in its own words, before leaving a page
  // whose uploads would stop; they resume from the panel's unfinished list on return.
  window.addEventListener("beforeunload", (event) => {
    const busy = controllers.find((controller) => controller.busy());
    if (busy) {
      event.preventDefault();
      event.returnValue = busy.leaveText();
    }
  });
})();
