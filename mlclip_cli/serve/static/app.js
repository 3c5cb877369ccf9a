// The search page of `mlclip serve`: calls the JSON API of the server that sent it (no CDN, no framework).
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("mlclip-token") || "";
const blobUrls = [];

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: "the server sent no JSON (" + response.status + ")" }; }
  if (response.status === 401) { $("token-box").hidden = false; }
  if (!response.ok) { throw new Error(body && body.error ? body.error : "HTTP " + response.status); }
  return body;
}

function languageName(code) {
  try { return new Intl.DisplayNames([navigator.language || "en"], { type: "language" }).of(code); } catch (e) { return code; }
}

async function loadLanguages() {
  const found = await api("/languages");
  const select = $("lang");
  while (select.options.length > 1) select.remove(1);  // keep "auto"
  for (const code of found.languages) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code + " · " + languageName(code);
    select.appendChild(option);
  }
  $("model").textContent = "model: " + found.model.split("/").filter(Boolean).pop();  // the folder's name
  $("model").title = found.model;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function thumbnail(img, url) {
  const src = url + "?thumb=1";
  if (!token) { img.src = src; return; }  // no token: the browser fetches (and caches) it itself
  const response = await fetch(src, { headers: headers() });  // an <img> cannot send the Authorization header
  if (response.ok) {
    const blobUrl = URL.createObjectURL(await response.blob());
    blobUrls.push(blobUrl);
    img.src = blobUrl;
  }
}

function show(answer) {
  while (blobUrls.length) URL.revokeObjectURL(blobUrls.pop());
  $("language").textContent = answer.language === null ? "image" : answer.language;
  $("confidence").textContent = answer.language === null ? "" : "(confidence " + answer.confidence.toFixed(2) + ")";
  $("latency").textContent = answer.latency_ms.toFixed(1) + " ms";
  $("count").textContent = answer.results.length + " images";
  const grid = $("results");
  grid.replaceChildren();
  for (const hit of answer.results) {
    const figure = document.createElement("figure");
    figure.className = "hit";
    figure.dataset.rank = hit.rank;
    figure.dataset.path = hit.path;
    const img = document.createElement("img");
    img.alt = hit.path;
    img.loading = "lazy";
    thumbnail(img, hit.url);
    const caption = document.createElement("figcaption");
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = "#" + hit.rank;
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = hit.path;
    path.title = hit.path;
    const score = document.createElement("span");
    score.textContent = hit.score.toFixed(3);
    caption.append(rank, path, score);
    figure.append(img, caption);
    grid.appendChild(figure);
  }
  document.body.dataset.state = "done";
}

async function searchText(event) {
  if (event) event.preventDefault();
  const q = $("q").value.trim();
  if (!q) { showError("type the words to search for"); return; }
  const params = new URLSearchParams({ q, k: $("k").value || "12", lang: $("lang").value });
  document.body.dataset.state = "searching";
  try {
    showError("");
    show(await api("/search?" + params.toString()));
    history.replaceState(null, "", "?" + params.toString());
  } catch (e) { showError(e.message); document.body.dataset.state = "error"; }
}

async function searchImage() {
  const file = $("image").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file);
  document.body.dataset.state = "searching";
  try {
    showError("");
    show(await api("/search?k=" + encodeURIComponent($("k").value || "12"), { method: "POST", body: form }));
  } catch (e) { showError(e.message); document.body.dataset.state = "error"; }
}

$("search").addEventListener("submit", searchText);
$("image").addEventListener("change", searchImage);
$("token-save").addEventListener("click", () => {
  token = $("token").value.trim();
  sessionStorage.setItem("mlclip-token", token);
  $("token-box").hidden = true;
  start();
});

async function start() {
  try {
    showError("");
    await loadLanguages();
    document.body.dataset.state = "ready";
    const given = new URLSearchParams(location.search);
    if (given.get("q")) {
      $("q").value = given.get("q");
      if (given.get("lang")) $("lang").value = given.get("lang");
      if (given.get("k")) $("k").value = given.get("k");
      searchText();
    }
  } catch (e) { showError(e.message); }
}

start();
