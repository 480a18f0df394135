// The queue page's updater: polls /_anteroom/status at the advised interval (backing off
// on errors), updates the page in place, and returns the visitor to the page they asked
// for when it is their turn. Everything it shows comes from the page's own texts.
(function () {
  "use strict";
  var main = document.querySelector("[data-anteroom-room]");
  if (!main) return;
  var texts = JSON.parse(document.getElementById("anteroom-texts").textContent);
  var room = main.getAttribute("data-anteroom-room");
  var back = main.getAttribute("data-anteroom-return-to") || "/";
  var lang = document.documentElement.lang || "en";
  var wait = Number(main.getAttribute("data-anteroom-poll-after-ms")) || 1000;
  var opensAt = main.getAttribute("data-anteroom-opens-at");
  var first = Number(main.getAttribute("data-anteroom-first-position")) || 0;
  var failures = 0;

  function hook(name) { return document.querySelectorAll("[data-anteroom=" + name + "]"); }
  function set(name, text) { hook(name).forEach(function (el) { if (el.textContent !== String(text)) el.textContent = text; }); }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }
  function show(name, visible) { hook(name).forEach(function (el) { el.hidden = !visible; }); }
  function etaText(seconds) {
    if (seconds == null) return texts.eta_unknown;
    if (seconds < 60) return texts.eta_soon;
    var low = Math.max(1, Math.floor(seconds * 0.8 / 60)), high = Math.max(low + 1, Math.ceil(seconds * 1.2 / 60));
    return fill(texts.eta_range, { low: low, high: high });
  }
  function aheadText(position) {
    if (position == null) return "";
    var ahead = position - 1;
    return ahead <= 0 ? texts.ahead_none : ahead === 1 ? texts.ahead_one : fill(texts.ahead_many, { n: ahead.toLocaleString(lang) });
  }

  function render(s) {
    set("headline", texts["headline_" + s.state] || texts.headline_waiting);
    ["waiting", "scheduled", "paused", "closed", "admitted"].forEach(function (state) { show("when-" + state, s.state === state); });
    if (s.position != null) {
      if (!first || s.position > first) first = s.position;
      set("position", s.position.toLocaleString(lang));
      var percent = first > 1 ? Math.round(100 * (first - s.position) / (first - 1)) : 100;
      hook("progress").forEach(function (el) { el.style.width = percent + "%"; el.parentNode.setAttribute("aria-valuenow", percent); });
    }
    set("ahead", aheadText(s.position));
    set("queue-length", s.queue_length === 1 ? texts.waiting_one
      : fill(texts.waiting_total, { n: Number(s.queue_length).toLocaleString(lang) }));
    set("eta", etaText(s.eta_seconds));
    set("updated", new Date().toLocaleTimeString(lang));
  }

  function countdown() {
    if (!opensAt) return;
    var left = Math.max(0, Math.round((Date.parse(opensAt) - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), sec = left % 60;
    set("countdown", (h ? h + ":" : "") + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0"));
  }

  function poll() {
    var url = "/_anteroom/status?room=" + encodeURIComponent(room) + "&return_to=" + encodeURIComponent(back);
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) {
        failures = 0;
        show("trouble", false);
        if (s.state === "admitted" || s.state === "open") {
          render({ state: "admitted", position: s.position, queue_length: s.queue_length, eta_seconds: null });
          setTimeout(function () { location.replace(s.return_to || back); }, 1200);
          return;
        }
        render(s);
        setTimeout(poll, s.poll_after_ms || wait);
      })
      .catch(function () {
        failures += 1;
        show("trouble", true);
        setTimeout(poll, Math.min(30000, wait * Math.pow(2, failures)));
      });
  }

  countdown();
  if (opensAt) setInterval(countdown, 1000);
  setTimeout(poll, wait);
})();
