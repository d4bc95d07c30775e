// Web Push in the service worker (docs/push.md): shows the order's news
// while no page of the order desk is open, and opens (or focuses) the
// order's page when the notification is clicked. Loaded by /sw.js with
// importScripts, so any service worker of the site can carry it.
"use strict";

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = { status_label: event.data ? event.data.text() : "" };
  }
  const title = data.number ? `Order ${data.number}: ${data.status_label || data.status}` : "Order update";
  const options = {
    body: data.store ? `${data.store} · ${data.status_label || data.status || ""}` : (data.status_label || ""),
    // One notification per order: a newer state replaces the older one.
    tag: data.order_id ? `order-${data.order_id}` : undefined,
    renotify: Boolean(data.order_id),
    data: { url: data.url || "/orders" },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/orders", self.location.origin);
  // Only this site's pages are opened.
  if (target.origin !== self.location.origin) return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).pathname === target.pathname && "focus" in client) {
        return client.focus();
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
