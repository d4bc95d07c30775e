// The service worker (served at /sw.js, headed by VERSION and SHELL: this
// build's version and the versioned URLs of its assets). It keeps the app
// shell and the last rendered state of the pages a person has open, so a
// reload without network shows them, marked offline. Changes taken offline
// are queued by the page itself (live.js), not here.

const SHELL_CACHE = `ordertrack-shell-${VERSION}`;
const PAGES_CACHE = `ordertrack-pages-${VERSION}`;
// When a cached page was rendered (a response header of the cached copy).
const CACHED_AT = "x-ordertrack-cached-at";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(SHELL);
    // A new build takes over at once: pages are fetched from the network
    // first and name versioned assets, so no page mixes two builds.
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    // Older builds' caches go: their assets and the pages that named them.
    for (const name of await caches.keys()) {
      if (name.startsWith("ordertrack-") && name !== SHELL_CACHE && name !== PAGES_CACHE) {
        await caches.delete(name);
      }
    }
    await self.clients.claim();
  })());
});

// A screen worth keeping for offline: a page a person works or watches on.
function keepsPage(url) {
  return /^\/(dashboard|kitchen|orders|driver|track|manage)(\/|$)/.test(url.pathname) || url.pathname === "/";
}

async function remember(request, response) {
  const headers = new Headers(response.headers);
  headers.set(CACHED_AT, new Date().toISOString());
  const body = await response.clone().arrayBuffer();
  const cache = await caches.open(PAGES_CACHE);
  await cache.put(request.url, new Response(body, { status: 200, headers }));
}

// The cached page, marked as shown offline with the time it was rendered.
async function offlineCopy(url) {
  const cache = await caches.open(PAGES_CACHE);
  const cached = await cache.match(url);
  if (!cached) return null;
  const at = cached.headers.get(CACHED_AT) || "";
  const html = (await cached.text()).replace("<html", `<html data-offline-since="${at}"`);
  const headers = new Headers(cached.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  return new Response(html, { status: 200, headers });
}

const OFFLINE_PAGE = `<!DOCTYPE html><html lang="en" data-offline-since=""><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline · ordertrack</title></head>
<body><main><h1>Offline</h1><p>This screen was not open before the connection dropped. It will load once the server can be reached.</p></main></body></html>`;

async function page(request) {
  const url = new URL(request.url);
  try {
    const response = await fetch(request);
    if (response.ok && keepsPage(url) && (response.headers.get("content-type") || "").startsWith("text/html")) {
      await remember(request, response);
    }
    return response;
  } catch (error) {
    const copy = await offlineCopy(request.url);
    if (copy) return copy;
    return new Response(OFFLINE_PAGE, { status: 503, headers: { "content-type": "text/html; charset=utf-8" } });
  }
}

async function asset(request) {
  const cached = await caches.match(request, { cacheName: SHELL_CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  // A versioned URL never changes: keep it with this build's shell.
  if (response.ok && /\.[0-9a-f]{12}\.[a-z]+$/.test(new URL(request.url).pathname)) {
    const cache = await caches.open(SHELL_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === "/logout") {
    // Signing out forgets the screens kept for this person.
    event.waitUntil(caches.delete(PAGES_CACHE));
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(asset(request));
  } else if (request.mode === "navigate") {
    event.respondWith(page(request));
  }
  // Everything else (the API, streams, fragments) goes to the network.
});

// The page sends its current state after each live refresh: the copy a
// reload without network shows is the last one rendered, not the first.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "snapshot" || typeof data.html !== "string") return;
  const url = new URL(data.url, self.location.origin);
  if (url.origin !== self.location.origin || !keepsPage(url)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(PAGES_CACHE);
    const headers = { "content-type": "text/html; charset=utf-8", [CACHED_AT]: new Date().toISOString() };
    await cache.put(url.href, new Response(data.html, { status: 200, headers }));
  })());
});
