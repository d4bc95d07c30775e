// ordertrack live updates: one EventSource per page, HTML fragments
// refreshed in place, no framework. Pages work without this file.

// Which build of the assets runs (the tests read it after an upgrade).
document.documentElement.dataset.assets = new URL(import.meta.url).pathname;

const CHANGE_EVENTS = ["order_created", "status_changed", "item_status_changed", "note_added", "order_cancelled", "payment_changed", "driver_assigned", "driver_unassigned"];
const KEY_STATES = ["ready", "out_for_delivery", "delivered"];

// ---- small helpers -------------------------------------------------------

function localTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-local]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) el.textContent = at.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }
}

function toast(text) {
  const box = document.getElementById("toasts");
  if (!box || !text) return;
  const el = document.createElement("div");
  el.className = "toast";
  el.setAttribute("role", "status");
  el.textContent = text;
  box.append(el);
  setTimeout(() => el.remove(), 6000);
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s ago`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m} min ago` : `${Math.round(m / 60)} h ago`;
}

// What a person is doing in a fragment's forms — text typed, boxes ticked,
// choices made, the field they are in — survives a live refresh: the fresh
// fragment's matching fields (same form action, same name, same position)
// get the values and the focus back.
function fieldKey(field, seen) {
  const base = `${field.form?.getAttribute("action") || ""}|${field.name || field.id}|${field.type}`;
  const n = seen.get(base) || 0;
  seen.set(base, n + 1);
  return `${base}|${n}`;
}

function editableFields(root) {
  return [...root.querySelectorAll("input, textarea, select")]
    .filter((f) => f.type !== "hidden" && f.type !== "submit" && f.type !== "button");
}

function changedByPerson(field) {
  if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
  if (field.tagName === "SELECT") return [...field.options].some((o) => o.selected !== o.defaultSelected);
  return field.value !== field.defaultValue;
}

function carryOver(old, fresh) {
  const seen = new Map();
  const kept = new Map();
  for (const field of editableFields(old)) {
    const key = fieldKey(field, seen);
    // A form being sent: its values are on their way, not being typed.
    if (field.form?.dataset.sending) continue;
    const focused = field === document.activeElement;
    if (focused || changedByPerson(field)) kept.set(key, { field, focused });
  }
  if (kept.size === 0) return;
  const freshSeen = new Map();
  for (const field of editableFields(fresh)) {
    const state = kept.get(fieldKey(field, freshSeen));
    if (!state) continue;
    const from = state.field;
    if (field.type === "checkbox" || field.type === "radio") field.checked = from.checked;
    else if (field.tagName === "SELECT") field.value = from.value;
    else field.value = from.value;
    if (state.focused) {
      field.dataset.refocus = "1";
      if ("selectionStart" in from && from.selectionStart !== null) {
        field.dataset.selection = `${from.selectionStart},${from.selectionEnd}`;
      }
    }
  }
}

function refocus(fresh) {
  const field = fresh.querySelector("[data-refocus]");
  if (!field) return;
  delete field.dataset.refocus;
  field.focus();
  const selection = field.dataset.selection;
  delete field.dataset.selection;
  if (selection && field.setSelectionRange) {
    const [start, end] = selection.split(",").map(Number);
    try { field.setSelectionRange(start, end); } catch (_) { /* not a text field */ }
  }
}

// Replaces `el` with its fragment fetched afresh from the server.
async function refreshFragment(el) {
  try {
    const response = await fetch(el.dataset.fragment, { headers: { "X-Requested-With": "fetch" }, cache: "no-store" });
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const fresh = template.content.firstElementChild;
    if (fresh && el.isConnected) {
      carryOver(el, fresh);
      el.replaceWith(fresh);
      refocus(fresh);
      localTimes(fresh);
    }
  } catch (_) { /* the stream's state tells the user */ }
}

async function refreshFragments() {
  await Promise.all([...document.querySelectorAll("[data-fragment]")].map(refreshFragment));
  kitchenAges();
  etas();
  await offlineQueue.show();
  snapshot();
}

// Fragments whose state changes without an order event (a print job's
// progress) refresh themselves every `data-poll` milliseconds.
function pollFragments() {
  for (const el of document.querySelectorAll("[data-poll]")) {
    const every = Number(el.dataset.poll);
    if (!(every > 0)) continue;
    const selector = `[data-fragment="${CSS.escape(el.dataset.fragment)}"]`;
    setInterval(() => {
      const current = document.querySelector(selector);
      if (current && !document.hidden) refreshFragment(current);
    }, every);
  }
}

let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshFragments, 30);
}

// ---- sound and notifications ----------------------------------------------

let chimeOn = localStorage.getItem("ordertrack.chime") === "on";
function chime() {
  if (!chimeOn) return;
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.6);
  } catch (_) { /* no audio */ }
}

function notify(title, body) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (localStorage.getItem("ordertrack.notify") !== "on") return;
  try { new Notification(title, { body }); } catch (_) { /* ignored */ }
}

// ---- one live connection per browser ------------------------------------

// Every tab of this origin shares the live connections of one tab, the
// leader (elected with the Web Locks API: whoever holds the lock), which
// opens one stream per screen asked for and relays its events over a
// BroadcastChannel; each tab takes only its own stream's events. Over plain
// HTTP/1.1 a browser allows six connections per host: with sharing, ten
// dashboards hold one. When the leader closes, the next tab in line for the
// lock takes over and resumes each stream from the last event the tabs saw.
// Without the two APIs each tab opens its own stream.
const sharedStreams = (() => {
  if (!("BroadcastChannel" in window) || !navigator.locks) return null;
  const channel = new BroadcastChannel("ordertrack-live");
  const mine = new Map(); // url → { lastId, handlers }
  let leading = false;
  const sources = new Map(); // url → { source, lastId, wantedAt, timer }

  function deliver(message) {
    const want = mine.get(message.url);
    if (!want) return;
    if (message.t === "state") { want.handlers.state(message.state); return; }
    if (message.id) {
      // Resumed streams may repeat what a tab already has.
      if (want.lastId !== "" && Number(message.id) <= Number(want.lastId)) return;
      want.lastId = message.id;
    }
    want.handlers.event({ type: message.type, lastEventId: message.id || "", data: message.data });
  }

  function relay(message) {
    channel.postMessage(message);
    deliver(message);
  }

  function open(url, lastId) {
    const entry = sources.get(url) || { lastId, wantedAt: Date.now() };
    if (entry.lastId === "" || (lastId !== "" && Number(lastId) > Number(entry.lastId))) entry.lastId = lastId;
    sources.set(url, entry);
    if (entry.source) return;
    const target = new URL(url, location.href);
    if (entry.lastId !== "") target.searchParams.set("last_event_id", entry.lastId);
    const source = new EventSource(target);
    entry.source = source;
    source.onopen = () => {
      // Marked for the tests: this tab holds an open connection.
      document.documentElement.dataset.liveLeader = "open";
      relay({ t: "state", url, state: "open" });
    };
    source.onerror = () => {
      relay({ t: "state", url, state: "error" });
      if (source.readyState === EventSource.CLOSED) reopen(url);
    };
    const forward = (event) => {
      if (event.lastEventId) entry.lastId = event.lastEventId;
      relay({ t: "event", url, type: event.type, id: event.lastEventId, data: event.data });
    };
    for (const kind of [...CHANGE_EVENTS, "ready", "snapshot"]) source.addEventListener(kind, forward);
    source.addEventListener("reconnect", () => { relay({ t: "state", url, state: "error" }); reopen(url); });
  }

  function reopen(url) {
    const entry = sources.get(url);
    if (!entry) return;
    entry.source?.close();
    entry.source = null;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => open(url, entry.lastId), 2000);
  }

  function lead() {
    leading = true;
    document.documentElement.dataset.liveLeader = "elected";
    // Every tab says again what it watches, and from where.
    channel.postMessage({ t: "leader" });
    for (const [url, want] of mine) open(url, want.lastId);
    // A screen nobody has asked for in a while is closed.
    setInterval(() => {
      for (const [url, entry] of sources) {
        if (!mine.has(url) && Date.now() - entry.wantedAt > 30000) {
          entry.source?.close();
          clearTimeout(entry.timer);
          sources.delete(url);
        }
      }
    }, 10000);
  }

  function announce() {
    for (const [url, want] of mine) {
      if (leading) open(url, want.lastId);
      else channel.postMessage({ t: "want", url, lastId: want.lastId });
    }
  }

  channel.onmessage = ({ data: message }) => {
    if (message.t === "want") {
      if (!leading) return;
      open(message.url, message.lastId);
      sources.get(message.url).wantedAt = Date.now();
      // A tab that arrives late learns the stream is already open.
      if (sources.get(message.url).source?.readyState === EventSource.OPEN) channel.postMessage({ t: "state", url: message.url, state: "open" });
    } else if (message.t === "leader") {
      announce();
    } else {
      deliver(message);
    }
  };

  navigator.locks.request("ordertrack-live-leader", () => {
    lead();
    return new Promise(() => { /* held while this tab lives */ });
  });
  setInterval(announce, 10000);

  return {
    subscribe(url, lastId, handlers) {
      mine.set(url, { lastId, handlers });
      announce();
      if (leading && sources.get(url)?.source?.readyState === EventSource.OPEN) handlers.state("open");
      return { close() { mine.delete(url); } };
    },
  };
})();

// ---- the live stream ------------------------------------------------------

function live(anchor) {
  const indicator = document.querySelector("[data-live-indicator]");
  const text = indicator?.querySelector("[data-live-text]");
  const toggle = indicator?.querySelector("[data-live-toggle]");
  const chimeKind = anchor.dataset.chime;
  let lastId = anchor.dataset.lastEventId || "";
  let lastUpdate = Date.now();
  let source = null;
  let state = "connecting"; // on | down | paused | connecting
  let wasDown = false;
  let reopenTimer = null;

  function show() {
    if (!indicator) return;
    indicator.classList.toggle("on", state === "on");
    indicator.classList.toggle("down", state === "down" || state === "connecting");
    indicator.classList.toggle("paused", state === "paused");
    const since = ago(Date.now() - lastUpdate);
    text.textContent =
      state === "on" ? `Live · updated ${since}` :
      state === "paused" ? `Paused · last update ${since}` :
      `Reconnecting — last update ${since}`;
    for (const el of document.querySelectorAll("[data-fragment]")) el.classList.toggle("stale", state !== "on");
  }

  function opened() {
    state = "on";
    lastUpdate = Date.now();
    if (wasDown) { wasDown = false; scheduleRefresh(); }
    show();
    backOnline();
    offlineQueue.send();
  }

  function failed(closed) {
    if (state === "paused") return;
    state = "down";
    wasDown = true;
    show();
    if (closed) reopenLater();
  }

  function open() {
    clearTimeout(reopenTimer);
    if (sharedStreams) {
      // The browser's one connection, shared with the other tabs.
      source = sharedStreams.subscribe(anchor.dataset.stream, lastId, {
        state: (now) => (now === "open" ? opened() : failed(false)),
        event: onEvent,
      });
      return;
    }
    const url = new URL(anchor.dataset.stream, location.href);
    if (lastId !== "") url.searchParams.set("last_event_id", lastId);
    source = new EventSource(url);
    source.onopen = opened;
    source.onerror = () => failed(source.readyState === EventSource.CLOSED);
    for (const kind of [...CHANGE_EVENTS, "ready", "snapshot"]) source.addEventListener(kind, onEvent);
    source.addEventListener("reconnect", () => { source.close(); state = "down"; wasDown = true; show(); reopenLater(); });
  }

  function onEvent(event) {
    if (event.lastEventId) { lastId = event.lastEventId; anchor.dataset.lastEventId = lastId; }
    lastUpdate = Date.now();
    if (state !== "on") { state = "on"; show(); }
    let data = null;
    try { data = JSON.parse(event.data); } catch (_) { /* ready has no body we need */ }
    if (event.type === "snapshot") { scheduleRefresh(); return; }
    if (!CHANGE_EVENTS.includes(event.type) || !data) return;
    scheduleRefresh();
    const summary = data.summary || {};
    let message = `${summary.number}: ${summary.icon || ""} ${summary.label || ""}`;
    if (data.item) message = `${summary.number}: ${data.item.name} ${data.item.to}`;
    if (event.type === "order_created") message = `New order ${summary.number}`;
    if (data.payment) message = `${summary.number}: payment ${data.payment.status.replace("_", " ")}`;
    toast(message);
    if (anchor.hasAttribute("data-notify") && data.to && KEY_STATES.includes(data.to)) {
      notify(`Order ${summary.number}`, `${summary.label}. ${summary.customer_message || ""}`);
    }
    if (chimeKind && event.type === chimeKind) chime();
  }

  function reopenLater() {
    if (source) source.close();
    clearTimeout(reopenTimer);
    reopenTimer = setTimeout(() => { if (state !== "paused") open(); }, 2000);
  }

  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", () => {
      if (state === "paused") {
        toggle.textContent = "Pause live updates";
        state = "connecting";
        wasDown = true;
        open();
      } else {
        toggle.textContent = "Resume live updates";
        if (source) source.close();
        clearTimeout(reopenTimer);
        state = "paused";
      }
      show();
    });
  }
  setInterval(show, 1000);
  show();
  open();
}

// ---- forms ----------------------------------------------------------------

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  if (!form.hasAttribute("data-enhance")) return;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form, event.submitter));
  // Changes wait their turn behind those taken offline, never overtake them.
  if (form.hasAttribute("data-offline") && await offlineQueue.waiting()) {
    await offlineQueue.add(form, event.submitter, body);
    return;
  }
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  form.dataset.sending = "1";
  let sent = false;
  let queued = false;
  try {
    const response = await fetch(form.action, { method: "POST", body, headers: { "X-Requested-With": "fetch" } });
    const flash = new URL(response.url).searchParams.get("flash");
    // The flashes of a refused change; any other answer applied it.
    const refused = ["conflict", "items_not_ready", "not_allowed", "invalid"].includes(flash);
    sent = response.ok && !refused;
    if (!response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      toast(page.querySelector("main p")?.textContent || "That didn't work.");
    } else if (flash === "conflict") {
      toast("Someone else changed this order first — showing its current state.");
    } else if (flash === "items_not_ready") {
      toast("Not every item is ready yet.");
    } else if (flash === "not_allowed") {
      toast("That step is not possible from the order's current state.");
    }
  } catch (_) {
    if (form.hasAttribute("data-offline")) {
      // No connection: kept, and sent when it is back.
      await offlineQueue.add(form, event.submitter, body);
      queued = true;
    } else {
      toast("Could not reach the server — try again.");
    }
  }
  delete form.dataset.sending;
  if (queued) {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    return;
  }
  if (sent) {
    // Done with: what was typed is not carried into the refreshed fragment.
    form.reset();
  } else if (!form.isConnected) {
    // Not applied, and a live refresh replaced the form meanwhile: the
    // person's input goes back into the form that replaced it.
    carryOver(form, document.body);
    refocus(document.body);
  }
  await refreshFragments();
});

// ---- cart total -----------------------------------------------------------

function cart() {
  const form = document.querySelector("[data-cart]");
  const total = form?.querySelector("[data-cart-total]");
  if (!form || !total) return;
  const update = () => {
    let minor = 0;
    for (const input of form.querySelectorAll("input[name^=qty_]")) {
      const price = Number(input.closest(".product")?.querySelector("[data-price]")?.dataset.price || 0);
      minor += price * Math.max(0, Number(input.value) || 0);
    }
    total.textContent = `${(minor / 100).toFixed(2)} ${total.dataset.currency}`;
  };
  form.addEventListener("input", update);
  update();
}

// ---- kitchen ticket ages --------------------------------------------------

function kitchenAges() {
  for (const ticket of document.querySelectorAll("[data-created-at]")) {
    const age = Date.now() - new Date(ticket.dataset.createdAt).getTime();
    const expected = Number(ticket.dataset.expectedMinutes || 15) * 60000;
    const minutes = Math.floor(age / 60000);
    const seconds = Math.floor((age % 60000) / 1000);
    const label = ticket.querySelector("[data-age]");
    if (label) label.textContent = `${minutes}:${String(seconds).padStart(2, "0")}`;
    ticket.classList.toggle("age-amber", age >= expected && age < 2 * expected);
    ticket.classList.toggle("age-red", age >= 2 * expected);
  }
}

// ---- ETA windows ------------------------------------------------------------

// The same rules as the server's `eta_text` (pages/layout.rs): the text
// counts down between changes of the order; a change re-renders it.
function etaText(earliest, latest, now) {
  if (now >= earliest) return "any minute now";
  const low = Math.ceil((earliest - now) / 60000);
  const high = Math.max(low, Math.ceil((latest - now) / 60000));
  const range = (a, b, unit) => (a === b ? `in about ${a} ${unit}` : `in about ${a}–${b} ${unit}`);
  if (high <= 90) return range(low, high, "min");
  if (high <= 24 * 60) return range(Math.max(1, Math.floor((low + 30) / 60)), Math.ceil(high / 60), "h");
  return `by ${new Date(latest).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" })}`;
}

function etas() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-eta-earliest]")) {
    const text = el.querySelector("[data-eta-text]");
    const earliest = new Date(el.dataset.etaEarliest).getTime();
    const latest = new Date(el.dataset.etaLatest).getTime();
    if (text && !isNaN(earliest) && !isNaN(latest)) text.textContent = etaText(earliest, latest, now);
  }
  for (const el of document.querySelectorAll("[data-due]")) {
    el.classList.toggle("late", now > new Date(el.dataset.due).getTime());
  }
  for (const el of document.querySelectorAll("time[data-clock]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) el.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
}

// ---- toggles ----------------------------------------------------------------

function toggles() {
  for (const button of document.querySelectorAll("[data-chime-toggle]")) {
    const label = () => { button.textContent = `${button.textContent.split(":")[0]}: ${chimeOn ? "on" : "off"}`; };
    button.hidden = false;
    label();
    button.addEventListener("click", () => {
      chimeOn = !chimeOn;
      localStorage.setItem("ordertrack.chime", chimeOn ? "on" : "off");
      label();
      if (chimeOn) chime();
    });
  }
  for (const button of document.querySelectorAll("[data-notify-toggle]")) {
    if (!("Notification" in window)) continue;
    button.hidden = false;
    const on = () => Notification.permission === "granted" && localStorage.getItem("ordertrack.notify") === "on";
    const label = () => { button.textContent = on() ? "Notifications on (turn off)" : "Notify me when it's ready"; };
    label();
    button.addEventListener("click", async () => {
      if (on()) { localStorage.setItem("ordertrack.notify", "off"); label(); return; }
      const permission = await Notification.requestPermission();
      if (permission === "granted") localStorage.setItem("ordertrack.notify", "on");
      label();
    });
  }
}

// ---- Web Push ------------------------------------------------------------------

// The VAPID key as PushManager takes it.
function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - base64url.length % 4) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

// Subscribes this browser (the service worker at /sw.js shows what comes)
// and hands the subscription to the server: for the signed-in customer's
// orders, or with `tracking` for that one order.
async function enablePush(tracking) {
  const registration = await navigator.serviceWorker.register("/sw.js");
  await navigator.serviceWorker.ready;
  if (await Notification.requestPermission() !== "granted") throw new Error("notifications are blocked in this browser");
  const key = await fetch("/api/v1/push/public-key").then((r) => (r.ok ? r.json() : Promise.reject(new Error("push is off"))));
  const subscription = (await registration.pushManager.getSubscription())
    || await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.public_key) });
  const { endpoint, keys } = subscription.toJSON();
  const body = { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
  if (tracking) body.tracking_token = tracking;
  const response = await fetch("/api/v1/push/subscriptions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || "could not subscribe");
}

// Opts out: the server forgets this browser for the account or the order.
// The browser's subscription stays (another order may use it).
async function disablePush(tracking) {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = await registration?.pushManager.getSubscription();
  if (!subscription) return;
  const body = { endpoint: subscription.endpoint };
  if (tracking) body.tracking_token = tracking;
  await fetch("/api/v1/push/subscriptions", {
    method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

// "Notify me" buttons: shown where the browser can take pushes.
function pushButtons() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
  for (const button of document.querySelectorAll("[data-push-toggle]")) {
    const tracking = button.dataset.pushTracking || "";
    const stored = `ordertrack.push.${tracking || "account"}`;
    const label = () => {
      button.textContent = localStorage.getItem(stored) === "on" ? "Notifications on (turn off)" : "Notify me";
    };
    button.hidden = false;
    label();
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        if (localStorage.getItem(stored) === "on") {
          await disablePush(tracking);
          localStorage.removeItem(stored);
        } else {
          await enablePush(tracking);
          localStorage.setItem(stored, "on");
          toast("We will notify you when your order moves on, even with this page closed.");
        }
      } catch (error) {
        toast(`Notifications: ${error.message}`);
      }
      button.disabled = false;
      label();
    });
  }
}

// ---- printing ----------------------------------------------------------------

// The receipt's and ticket's "Print" button: hidden until this script can
// press it (the page's CSP refuses inline handlers).
function printButtons() {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
}

// ---- offline: the service worker, the queue of changes, the cached screen ---

// The last update a screen shown without network had: the service worker
// marks a page it answers from its cache with when it was rendered.
function offlineBanner() {
  const since = document.documentElement.dataset.offlineSince;
  if (since === undefined) return;
  const at = new Date(since);
  const when = isNaN(at) ? "unknown" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const banner = document.createElement("p");
  banner.className = "flash warn offline-banner";
  banner.setAttribute("role", "status");
  banner.dataset.offlineBanner = "";
  banner.textContent = `Offline — last update ${when}`;
  (document.querySelector("main") || document.body).prepend(banner);
}

// Hands the page as it is now to the service worker: what a reload without
// network shows. Debounced: live refreshes come in bursts.
let snapshotTimer = null;
function snapshot() {
  if (document.documentElement.dataset.offlineSince !== undefined) return;
  const worker = navigator.serviceWorker?.controller;
  if (!worker) return;
  clearTimeout(snapshotTimer);
  snapshotTimer = setTimeout(() => {
    const copy = document.documentElement.cloneNode(true);
    // Passing notes and this script's marks are not the screen's state.
    for (const el of copy.querySelectorAll("#toasts > *, [data-offline-banner], [data-queue-note]")) el.remove();
    for (const el of copy.querySelectorAll(".stale, .pending")) el.classList.remove("stale", "pending");
    worker.postMessage({ type: "snapshot", url: location.pathname + location.search, html: `<!DOCTYPE html>\n${copy.outerHTML}` });
  }, 200);
}

// Live again: a screen that came from the cache is refreshed and loses
// its offline mark.
function backOnline() {
  if (document.documentElement.dataset.offlineSince === undefined) return;
  delete document.documentElement.dataset.offlineSince;
  for (const el of document.querySelectorAll("[data-offline-banner]")) el.remove();
  scheduleRefresh();
}

function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(() => snapshot(), () => { /* no offline copy */ });
  navigator.serviceWorker.addEventListener("controllerchange", () => snapshot());
}

// Changes taken while the server cannot be reached (item taps, bumps,
// recalls, moves, payment marks: forms marked `data-offline`), kept in
// IndexedDB until they are sent, in the order they were taken. Each has its
// idempotency key (a retry is applied at most once) and the version of the
// order it was taken on (a ticket someone else moved meanwhile is refused,
// and shown as a conflict, never overwritten).
const offlineQueue = (() => {
  let database = null;
  function db() {
    database ??= new Promise((resolve, reject) => {
      const opening = indexedDB.open("ordertrack-offline", 1);
      opening.onupgradeneeded = () => opening.result.createObjectStore("actions", { keyPath: "seq", autoIncrement: true });
      opening.onsuccess = () => resolve(opening.result);
      opening.onerror = () => reject(opening.error);
    });
    return database;
  }
  const done = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  async function actions() {
    const store = (await db()).transaction("actions").objectStore("actions");
    return done(store.getAll());
  }
  async function put(action) {
    return done((await db()).transaction("actions", "readwrite").objectStore("actions").put(action));
  }
  async function remove(seq) {
    return done((await db()).transaction("actions", "readwrite").objectStore("actions").delete(seq));
  }
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  const orderOf = (url) => (url.match(/\/orders\/(\d+)\//) || [])[1] || "";

  async function add(form, submitter, body) {
    const path = new URL(form.action, location.href).pathname;
    const order = orderOf(path);
    const queued = await actions();
    // A second change of an order waiting on a first: its version is the
    // one the first leaves, known once the first is applied.
    const after = queued.some((a) => a.order === order && a.state === "pending");
    const seen = body.get("expected_version") || form.closest("[data-version]")?.dataset.version || "";
    body.delete("expected_version");
    // A form of several buttons (the steps an order may take) is named by
    // the one pressed.
    const several = form.querySelectorAll("button[type=submit]").length > 1;
    const label = ((several && submitter?.textContent) || form.dataset.offline || "Change").trim().replace(/\s+/g, " ");
    await put({
      key: newKey(), url: path, body: body.toString(), order, label,
      expected: after ? null : seen, chained: after, state: "pending", at: Date.now(),
    });
    await show();
    toast("No connection — saved; it will be sent when the connection is back.");
    send();
  }

  // The server's answer to a replayed form: applied, or refused (and why).
  async function outcome(response) {
    if (response.status >= 500 || response.status === 429 || response.status === 401) return { retry: true };
    if (response.status === 409 || response.status === 422 || response.status === 404 || response.status === 403) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      return { refused: page.querySelector("main p")?.textContent || "The server refused it." };
    }
    const flash = new URL(response.url).searchParams.get("flash");
    const refusals = {
      conflict: "Someone else changed this order first.",
      items_not_ready: "Not every item is ready yet.",
      not_allowed: "That step is not possible from the order's current state.",
      payment_required: "This order must be paid first.",
      invalid: "The server refused it.",
    };
    if (flash in refusals) return { refused: refusals[flash] };
    return { applied: true };
  }

  let sending = null;
  function send() {
    sending ??= drain().finally(() => { sending = null; });
    return sending;
  }

  async function drain() {
    if (!(await waiting())) return 0;
    let applied = 0;
    const refusedOrders = new Set();
    for (const action of await actions()) {
      if (action.state !== "pending") continue;
      if (action.chained && refusedOrders.has(action.order)) {
        action.state = "conflict";
        action.detail = "Not sent: an earlier change of this order did not apply.";
        await put(action);
        continue;
      }
      const body = new URLSearchParams(action.body);
      let expected = action.expected;
      if (action.chained) expected = await currentVersion(action.order);
      if (expected !== null && expected !== "" && expected !== undefined) body.set("expected_version", expected);
      let response;
      try {
        response = await fetch(action.url, {
          method: "POST", body,
          headers: { "X-Requested-With": "fetch", "Idempotency-Key": action.key },
        });
      } catch (_) {
        break; // still no connection: the rest waits, in order
      }
      const result = await outcome(response);
      if (result.retry) break;
      if (result.applied) {
        await remove(action.seq);
        applied += 1;
        continue;
      }
      action.state = "conflict";
      action.detail = result.refused;
      await put(action);
      refusedOrders.add(action.order);
    }
    await show();
    if (applied > 0) await refreshFragments();
    return applied;
  }

  // The version of an order now (for a change queued behind another).
  async function currentVersion(order) {
    try {
      const response = await fetch(`/api/v1/orders/${order}`, { cache: "no-store" });
      if (response.ok) return String((await response.json()).version);
    } catch (_) { /* sent without: the server decides on the current order */ }
    return null;
  }

  async function waiting() {
    try { return (await actions()).some((a) => a.state === "pending"); } catch (_) { return false; }
  }

  // Marks every card with its waiting and refused changes, and says how
  // many wait.
  async function show() {
    let all = [];
    try { all = await actions(); } catch (_) { return; }
    for (const el of document.querySelectorAll("[data-queue-note]")) el.remove();
    for (const el of document.querySelectorAll("[data-order-id].pending, [data-order-id].conflict")) el.classList.remove("pending", "conflict");
    const pending = all.filter((a) => a.state === "pending");
    let counter = document.querySelector("[data-queue-count]");
    if (!counter) {
      counter = document.createElement("p");
      counter.dataset.queueCount = "";
      counter.className = "queue-count";
      counter.setAttribute("role", "status");
      (document.querySelector("[data-live-indicator]") || document.querySelector("main") || document.body).after(counter);
    }
    counter.hidden = pending.length === 0;
    counter.textContent = pending.length === 1 ? "1 action waiting to be sent" : `${pending.length} actions waiting to be sent`;
    for (const action of all) {
      const card = document.querySelector(`[data-order-id="${CSS.escape(action.order)}"]`)
        || (document.querySelector("#panel") && location.pathname.includes(`/orders/${action.order}`) ? document.querySelector("#panel") : null);
      if (!card) continue;
      const note = document.createElement("p");
      note.dataset.queueNote = action.state;
      note.dataset.seq = action.seq;
      if (action.state === "pending") {
        card.classList.add("pending");
        note.className = "queue-note pending-note";
        note.textContent = `⏳ Pending: ${action.label}`;
      } else {
        card.classList.add("conflict");
        note.className = "queue-note conflict-note";
        note.textContent = `⚠ Not applied: ${action.label} — ${action.detail} Shown as it is now.`;
        const dismiss = document.createElement("button");
        dismiss.type = "button";
        dismiss.className = "link";
        dismiss.textContent = "Dismiss";
        dismiss.addEventListener("click", async () => { await remove(action.seq); await show(); });
        note.append(" ", dismiss);
      }
      (card.tagName === "TR" ? card.querySelector("td:last-child") || card : card).append(note);
    }
  }

  return { add, send, show, waiting };
})();

// The kitchen display keeps the screen on while it is open (taken again
// whenever the page comes back into view: the browser drops it when hidden).
function keepAwake() {
  if (!document.querySelector(".kitchen") || !("wakeLock" in navigator)) return;
  const take = async () => {
    if (document.visibilityState !== "visible") return;
    try { await navigator.wakeLock.request("screen"); } catch (_) { /* not allowed here */ }
  };
  document.addEventListener("visibilitychange", take);
  take();
}

window.addEventListener("online", () => offlineQueue.send());
setInterval(() => offlineQueue.send(), 5000);

localTimes();
offlineBanner();
registerWorker();
keepAwake();
offlineQueue.show();
cart();
toggles();
printButtons();
pushButtons();
pollFragments();
kitchenAges();
etas();
setInterval(() => { kitchenAges(); etas(); }, 1000);
const anchor = document.querySelector("[data-stream]");
if (anchor) live(anchor);
