"use strict";
// The kiosk portal: upload images, submit jobs, follow them, show and download results.
// Plain JavaScript with no build step; it talks only to this kiosk's API.

const JOBS_KEY = "kiosk.jobs";
const TOKEN_KEY = "kiosk.token";
const MAX_JOBS = 100;
const POLL_MS = 1500;
const FINAL = new Set(["done", "failed", "expired"]);
const STATUS_TEXT = {
  new: "Queued", started: "Started", "pre-processing": "Preparing", predicting: "Predicting",
  "post-processing": "Finding cells", "saving-results": "Saving", waiting: "Processing images",
  done: "Done", failed: "Failed", expired: "Expired",
};

const $ = (id) => document.getElementById(id);
const lastLine = (text) => (text || "").trim().split("\n").filter((l) => l.trim()).pop() || "";

// ---- API ------------------------------------------------------------------

function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let tokenPrompt = null;

function askForToken() {
  tokenPrompt ??= new Promise((resolve) => {
    const dialog = $("token-dialog");
    dialog.addEventListener("close", () => {
      localStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      tokenPrompt = null;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return tokenPrompt;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function withToken(call) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (error.status !== 401 || attempt >= 3) throw error;
      await askForToken();
    }
  }
}

function api(path, options = {}) {
  return withToken(async () => {
    const response = await fetch(path, { ...options, headers: { ...options.headers, ...authHeaders() } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body.message || `${response.status} ${response.statusText}`);
    return body;
  });
}

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function upload(file, onProgress) {
  return withToken(() => new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/upload");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress((100 * event.loaded) / event.total);
    };
    request.onload = () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch { /* not JSON: keep the status */ }
      if (request.status === 200) resolve(body);
      else reject(new ApiError(request.status, body.message || `upload failed (${request.status})`));
    };
    request.onerror = () => reject(new ApiError(0, "the connection to the kiosk was lost"));
    const form = new FormData();
    form.append("file", file);
    request.send(form);
  }));
}

// ---- Recent jobs, kept in this browser ------------------------------------

function loadJobs() {
  try { return JSON.parse(localStorage.getItem(JOBS_KEY)) || []; } catch { return []; }
}

let jobs = loadJobs();

function saveJobs() {
  jobs = jobs.slice(0, MAX_JOBS);
  localStorage.setItem(JOBS_KEY, JSON.stringify(jobs));
  $("no-jobs").hidden = jobs.length > 0;
}

function jobCard(job) {
  const existing = document.querySelector(`.job[data-key="${CSS.escape(job.key)}"]`);
  if (existing) return existing;
  const card = $("job-template").content.firstElementChild.cloneNode(true);
  card.dataset.key = job.key;
  card.querySelector(".job-name").textContent = job.name;
  card.querySelector(".job-remove").addEventListener("click", () => {
    jobs = jobs.filter((j) => j.key !== job.key);
    saveJobs();
    card.remove();
  });
  $("jobs").append(card);
  return card;
}

function showStatus(card, status, progress) {
  card.dataset.status = status;
  card.querySelector(".job-status").textContent = STATUS_TEXT[status] || status;
  const bar = card.querySelector(".job-progress");
  if (progress === null || progress === undefined) bar.removeAttribute("value");
  else bar.value = progress;
}

function render(card, view) {
  showStatus(card, view.status || "new", view.progress);
  const created = view.createdAt ? new Date(view.createdAt).toLocaleString() : "";
  const found = view.nuclei === null || view.nuclei === undefined ? "" : `${view.nuclei} nuclei`;
  card.querySelector(".job-meta").textContent = [view.model, created, found, scaleText(view)].filter(Boolean).join(" · ");
  // Why a queued job has not started (the model server is not ready), so nobody thinks it hung.
  const waitingLine = card.querySelector(".job-waiting");
  waitingLine.hidden = !view.waiting;
  waitingLine.textContent = view.waiting ? `${view.waiting[0].toUpperCase()}${view.waiting.slice(1)}…` : "";
  const error = card.querySelector(".job-error");
  error.hidden = view.status !== "failed";
  error.textContent = view.status === "failed" ? lastLine(view.reason) || "The job failed." : "";
  error.title = view.reason || "";
  const result = card.querySelector(".job-result");
  result.hidden = !(view.status === "done" && view.outputUrl);
  if (!result.hidden) {
    const preview = card.querySelector(".job-preview");
    preview.hidden = !view.previewUrl;
    if (view.previewUrl) preview.src = view.previewUrl;
    preview.onclick = () => openViewer(view.name || view.key, view.previewUrl, view.previewImageUrl);
    card.querySelector(".job-download").href = view.outputUrl;
  }
  renderChildren(card.querySelector(".job-children"), view.children || []);
}

function renderChildren(list, children) {
  list.replaceChildren(...children.map((child) => {
    const item = document.createElement("li");
    item.dataset.status = child.status;
    const title = document.createElement("div");
    title.textContent = `${child.name || child.key}: ${STATUS_TEXT[child.status] || child.status}`;
    item.append(title);
    if (child.status === "done" && child.previewUrl) {
      const image = document.createElement("img");
      image.src = child.previewUrl;
      image.alt = `Overlay of ${child.name}`;
      image.title = "Click to look closely";
      image.addEventListener("click", () => openViewer(child.name || child.key, child.previewUrl, child.previewImageUrl));
      item.append(image);
    } else if (child.status === "failed") {
      const reason = document.createElement("div");
      reason.className = "failed";
      reason.textContent = lastLine(child.reason);
      item.append(reason);
    }
    return item;
  }));
}

// How the image was scaled: "nuclei ~34 px across · scale 0.59 (estimated)".
function scaleText(view) {
  const parts = [];
  if (view.estimatedDiameter) parts.push(`nuclei ~${Math.round(view.estimatedDiameter)} px across`);
  if (view.pixelSizeUm) parts.push(`${view.pixelSizeUm} µm/px`);
  if (view.scaleUsed) parts.push(`scale ${view.scaleUsed} (${view.scaleSource || "given"})`);
  return parts.join(" · ");
}

// ---- Looking closely: the overlay large, zoomable, outlines on or off ---------

const viewer = { zoom: 1, overlay: "", plain: "" };

function openViewer(title, overlayUrl, plainUrl) {
  viewer.overlay = overlayUrl;
  viewer.plain = plainUrl || "";
  $("viewer-title").textContent = title;
  $("viewer-outlines").checked = true;
  $("viewer-outlines").disabled = !plainUrl;
  const image = $("viewer-image");
  image.alt = `Overlay of ${title}`;
  image.addEventListener("load", fitViewer, { once: true });
  image.src = overlayUrl;
  $("viewer").showModal();
}

function setZoom(zoom) {
  const image = $("viewer-image");
  viewer.zoom = Math.min(32, Math.max(0.05, zoom));
  image.style.width = `${Math.round(image.naturalWidth * viewer.zoom)}px`;
  $("viewer-zoom").textContent = `${Math.round(viewer.zoom * 100)}%`;
}

function fitViewer() {
  const frame = $("viewer-frame");
  const image = $("viewer-image");
  if (!image.naturalWidth) return;
  setZoom(Math.min(frame.clientWidth / image.naturalWidth, frame.clientHeight / image.naturalHeight));
}

function setUpViewer() {
  $("viewer-zoom-in").addEventListener("click", () => setZoom(viewer.zoom * 1.5));
  $("viewer-zoom-out").addEventListener("click", () => setZoom(viewer.zoom / 1.5));
  $("viewer-fit").addEventListener("click", fitViewer);
  $("viewer-actual").addEventListener("click", () => setZoom(1));
  $("viewer-close").addEventListener("click", () => $("viewer").close());
  $("viewer-outlines").addEventListener("change", (event) => {
    $("viewer-image").src = event.target.checked || !viewer.plain ? viewer.overlay : viewer.plain;
  });
  const frame = $("viewer-frame");
  frame.addEventListener("wheel", (event) => {
    event.preventDefault();
    setZoom(viewer.zoom * (event.deltaY < 0 ? 1.25 : 0.8));
  }, { passive: false });
  let drag = null;  // drag to pan
  frame.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, left: frame.scrollLeft, top: frame.scrollTop };
    event.preventDefault();
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    frame.scrollLeft = drag.left - (event.clientX - drag.x);
    frame.scrollTop = drag.top - (event.clientY - drag.y);
  });
  window.addEventListener("pointerup", () => { drag = null; });
}

async function refresh(job) {
  const card = jobCard(job);
  try {
    const view = await api(`/api/jobs/${encodeURIComponent(job.key)}`);
    job.status = view.status;
    render(card, view);
  } catch (error) {
    if (error.status !== 404) return; // a hiccup: the next round tries again
    job.status = "expired";
    showStatus(card, "expired", null);
    const message = card.querySelector(".job-error");
    message.hidden = false;
    message.textContent = "This job is no longer on the kiosk: finished jobs are kept for a limited time.";
  }
}

async function poll() {
  await Promise.all(jobs.filter((job) => !FINAL.has(job.status)).map(refresh));
  saveJobs();
  setTimeout(poll, POLL_MS);
}

// ---- Submitting files -------------------------------------------------------

function options() {
  const [modelName, modelVersion] = $("model").value ? $("model").value.split(":") : ["", ""];
  return {
    jobType: $("job-type").value,
    modelName,
    modelVersion,
    jobForm: { scale: $("scale").value, imageMpp: $("image-mpp").value, dimensionOrder: $("dimension-order").value },
  };
}

async function submit(file) {
  const row = $("upload-template").content.firstElementChild.cloneNode(true);
  const bar = row.querySelector("progress");
  const state = row.querySelector(".upload-state");
  row.querySelector(".upload-name").textContent = file.name;
  state.textContent = "Uploading…";
  $("uploads").append(row);
  try {
    const uploaded = await upload(file, (percent) => { bar.value = percent; });
    bar.value = 100;
    state.textContent = "Submitting…";
    const { hash } = await postJson("/api/predict", {
      ...options(),
      imageName: uploaded.uploadedName.replace(/^uploads\//, ""),
      uploadedName: uploaded.uploadedName,
      imageUrl: uploaded.imageURL,
    });
    const job = { key: hash, name: file.name, status: "new", submittedAt: Date.now() };
    jobs.unshift(job);
    saveJobs();
    $("jobs").prepend(jobCard(job));
    showStatus(jobCard(job), "new", 0);
    row.remove();
  } catch (error) {
    row.classList.add("failed");
    state.textContent = "Not submitted";
    showNotice(`${file.name}: ${error.message}`);
  }
}

function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.hidden = !text;
}

function submitAll(files) {
  showNotice("");
  for (const file of files) submit(file);
}

async function loadChoices() {
  try {
    const [{ jobTypes }, { models }] = await Promise.all([api("/api/jobtypes"), api("/api/models")]);
    $("job-type").replaceChildren(...jobTypes.map((type) => new Option(type, type)));
    for (const [name, versions] of Object.entries(models)) {
      for (const version of [...versions].reverse()) {
        $("model").append(new Option(`${name} · version ${version}`, `${name}:${version}`));
      }
    }
  } catch (error) {
    showNotice(`The kiosk did not answer: ${error.message}`);
  }
}

function setUpDropZone() {
  const zone = $("drop-zone");
  const input = $("file-input");
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => { submitAll([...input.files]); input.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    submitAll([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not replace the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

$("clear-jobs").addEventListener("click", () => {
  for (const job of jobs.filter((j) => FINAL.has(j.status))) jobCard(job).remove();
  jobs = jobs.filter((job) => !FINAL.has(job.status));
  saveJobs();
});

setUpDropZone();
setUpViewer();
loadChoices();
saveJobs();
for (const job of jobs) {
  const card = jobCard(job);
  showStatus(card, job.status || "new", null);
}
// Finished jobs are read once for fresh links; unfinished ones until they finish.
Promise.all(jobs.filter((job) => FINAL.has(job.status) && job.status !== "expired").map(refresh))
  .then(poll);
