// Switchboard customer chat widget loader. Embed with one script tag:
//   <script src="https://chat.example.com/widget.js" data-site="shop" async></script>
// Optional attributes:
//   data-identity-token="eyJ…"  identity token signed by the site's backend (docs/identity.md)
//   data-prechat="true"         ask for name and e-mail before the chat starts
//   data-queue="Support"        a queue by name (without data-site: the only setting)
//   data-label="Chat with us"   the launcher's text
// A page that gets the token later calls SwitchboardWidget.identify(token).
// Adds a launcher button to the host page; the chat itself runs in an iframe
// served from the same origin as this script. Styles are set through the
// CSSOM (not style attributes), so a strict host Content-Security-Policy works.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__switchboardWidget) return;
  window.__switchboardWidget = true;

  const origin = new URL(script.src).origin;
  const site = script.dataset.site || "";
  const queue = script.dataset.queue || (site ? "" : "Support");
  const prechat = script.dataset.prechat === "true";
  const danish = /^(da|nb|no)\b/i.test(navigator.language || "");
  const label = script.dataset.label || (danish ? "Skriv med os" : "Chat with us");
  const closeLabel = danish ? "Luk chat" : "Close chat";
  const openKey = "switchboard-widget-open:" + (site ? "site:" + site : queue);
  let identityToken = script.dataset.identityToken || null;

  const button = document.createElement("button");
  button.type = "button";
  button.dataset.testid = "widget-launcher";
  button.textContent = label;
  button.setAttribute("aria-expanded", "false");
  Object.assign(button.style, {
    position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000",
    padding: "12px 18px", border: "0", borderRadius: "24px", cursor: "pointer",
    background: "#1a56db", color: "#fff", font: "600 15px/1.2 system-ui, sans-serif",
    boxShadow: "0 4px 12px rgba(0,0,0,.25)",
  });

  let frame = null;

  function createFrame() {
    frame = document.createElement("iframe");
    const params = new URLSearchParams();
    if (site) params.set("site", site);
    if (queue) params.set("queue", queue);
    if (prechat) params.set("prechat", "true");
    frame.src = origin + "/widget/frame.html?" + params;
    // The token goes by postMessage to our origin only, never in the URL
    // (URLs end up in logs and Referer headers).
    frame.addEventListener("load", sendIdentity);
    frame.title = "Chat";
    frame.id = "switchboard-frame";
    Object.assign(frame.style, {
      position: "fixed", right: "20px", bottom: "76px", zIndex: "2147483000",
      width: "min(370px, calc(100vw - 40px))", height: "min(560px, calc(100vh - 100px))",
      border: "1px solid #d9dee5", borderRadius: "12px", background: "#fff",
      boxShadow: "0 8px 24px rgba(0,0,0,.25)",
    });
    button.setAttribute("aria-controls", frame.id);
    document.body.appendChild(frame);
  }

  function sendIdentity() {
    if (frame && frame.contentWindow && identityToken) {
      frame.contentWindow.postMessage({ type: "switchboard:identify", token: identityToken }, origin);
    }
  }

  const api = Object.freeze({
    /** Hands the widget an identity token signed by the site's backend. */
    identify(token) {
      identityToken = String(token);
      sendIdentity();
    },
  });
  window.SwitchboardWidget = api;
  // The older name, kept for pages that already call it.
  window.Switchboard = api;
  window.dispatchEvent(new Event("switchboard:ready"));

  function setOpen(open, focus) {
    if (open && !frame) createFrame();
    if (frame) frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? closeLabel : label;
    try { sessionStorage.setItem(openKey, open ? "1" : ""); } catch (_) { /* storage blocked */ }
    if (focus && open) {
      frame.focus();
      // Into the frame's first field (same origin, so this is allowed).
      try { frame.contentWindow.focus(); } catch (_) { /* not loaded yet */ }
    }
    if (focus && !open) button.focus();
  }

  button.addEventListener("click", () => setOpen(button.getAttribute("aria-expanded") !== "true", true));

  // The frame asks to be minimised (its close button or Escape).
  window.addEventListener("message", (e) => {
    if (!frame || e.origin !== origin || e.source !== frame.contentWindow) return;
    if (e.data && e.data.type === "switchboard:minimise") setOpen(false, true);
  });

  function mount() {
    document.body.appendChild(button);
    let wasOpen = false;
    try { wasOpen = sessionStorage.getItem(openKey) === "1"; } catch (_) { /* storage blocked */ }
    if (wasOpen) setOpen(true, false);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
