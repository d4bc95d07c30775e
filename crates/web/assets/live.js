// ordertrack live updates: one EventSource per page, HTML fragments
// refreshed in place, no framework. Pages work without this file.

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

  function open() {
    clearTimeout(reopenTimer);
    const url = new URL(anchor.dataset.stream, location.href);
    if (lastId !== "") url.searchParams.set("last_event_id", lastId);
    source = new EventSource(url);
    source.onopen = () => {
      state = "on";
      lastUpdate = Date.now();
      if (wasDown) { wasDown = false; scheduleRefresh(); }
      show();
    };
    source.onerror = () => {
      if (state === "paused") return;
      state = "down";
      wasDown = true;
      show();
      if (source.readyState === EventSource.CLOSED) reopenLater();
    };
    const onEvent = (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
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
    };
    for (const kind of [...CHANGE_EVENTS, "ready", "snapshot"]) source.addEventListener(kind, onEvent);
    source.addEventListener("reconnect", () => { source.close(); state = "down"; wasDown = true; show(); reopenLater(); });
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
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  form.dataset.sending = "1";
  let sent = false;
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
    toast("Could not reach the server — try again.");
  }
  delete form.dataset.sending;
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

localTimes();
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
