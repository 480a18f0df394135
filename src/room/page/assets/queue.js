// The queue page's updater: polls /_anteroom/status at the advised interval (backing off
// on errors), updates the page and the tab title in place, and returns the visitor to the
// page they asked for when it is their turn. A tab in the background has its timers
// slowed to about once a minute, and a phone freezes the page: so it also polls at once
// when the page is shown again and when the network comes back. Everything it shows comes
// from the page's own texts (a custom template may override them, see docs/TEMPLATES.md).
// In a room with a proof-of-work challenge it first solves the challenge in a Web Worker
// (assets/pow.js), showing progress, and joins the line with the solution.
(function () {
  "use strict";
  var main = document.querySelector("[data-anteroom-room]");
  if (!main) return;
  var texts = JSON.parse(document.getElementById("anteroom-texts").textContent);
  var custom = document.getElementById("anteroom-custom-texts");
  if (custom) {
    try { Object.assign(texts, JSON.parse(custom.textContent)); } catch (e) { /* the built-in texts stay */ }
  }
  var room = main.getAttribute("data-anteroom-room");
  var title = main.getAttribute("data-anteroom-title") || room;
  var back = main.getAttribute("data-anteroom-return-to") || "/";
  var lang = document.documentElement.lang || "en";
  var wait = Number(main.getAttribute("data-anteroom-poll-after-ms")) || 1000;
  var opensAt = main.getAttribute("data-anteroom-opens-at");
  var zone = main.getAttribute("data-anteroom-time-zone") || undefined;
  var first = Number(main.getAttribute("data-anteroom-first-position")) || 0;
  var plurals = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  var worker = main.getAttribute("data-anteroom-challenge-worker");
  var failures = 0, timer = null, inFlight = false, done = false, solving = null;
  // Said once by the server (on the answer that gave a new place): kept on screen after.
  var lost = hook("place-lost").length > 0 && !hook("place-lost")[0].hidden;

  function hook(name) { return document.querySelectorAll("[data-anteroom=" + name + "]"); }
  function set(name, text) { hook(name).forEach(function (el) { if (el.textContent !== String(text)) el.textContent = text; }); }
  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }
  function show(name, visible) { hook(name).forEach(function (el) { el.hidden = !visible; }); }
  function number(n) { return Number(n).toLocaleString(lang); }
  // A text with a count: the form of the language's plural rules (Polish: 1 osoba, 2 osoby, 5 osób).
  function counted(key, n) {
    var forms = texts[key];
    if (typeof forms === "string") return fill(forms, { n: number(n), title: title });
    var form = (plurals && forms[plurals.select(n)]) || forms.other;
    return fill(form, { n: number(n), title: title });
  }
  function time(date, options) {
    try { return date.toLocaleString(lang, Object.assign({ timeZone: zone }, options)); }
    catch (e) { return date.toLocaleString(lang, options); }
  }
  function etaText(seconds) {
    if (seconds == null) return texts.eta_unknown;
    if (seconds < 60) return texts.eta_soon;
    var low = Math.max(1, Math.floor(seconds * 0.8 / 60)), high = Math.max(low + 1, Math.ceil(seconds * 1.2 / 60));
    return fill(texts.eta_range, { low: number(low), high: number(high) });
  }
  function aheadText(position) {
    if (position == null) return "";
    return position <= 1 ? texts.ahead_none : counted("ahead", position - 1);
  }
  function tabTitle(state, position) {
    if (state === "waiting" && position != null) return counted("tab_waiting", position);
    if (state === "admitted") return fill(texts.tab_admitted, { title: title });
    if (state === "left") return fill(texts.tab_left, { title: title });
    return title + " — " + texts.page_title;
  }

  function render(s) {
    set("headline", texts["headline_" + s.state] || texts.headline_waiting);
    ["waiting", "scheduled", "paused", "closed", "admitted", "left", "challenge", "claimed", "refused"].forEach(function (state) { show("when-" + state, s.state === state); });
    show("calm", s.state !== "challenge" && s.state !== "refused" && s.state !== "claimed");
    if (s.refused_reason) set("refused-text", texts["refused_" + s.refused_reason] || "");
    if (s.position != null) {
      if (!first || s.position > first) first = s.position;
      set("position", number(s.position));
      var percent = first > 1 ? Math.round(100 * (first - s.position) / (first - 1)) : 100;
      hook("progress").forEach(function (el) { el.style.width = percent + "%"; el.parentNode.setAttribute("aria-valuenow", percent); });
    }
    set("ahead", aheadText(s.position));
    set("queue-length", counted("waiting", s.queue_length || 0));
    set("eta", etaText(s.eta_seconds));
    set("updated", time(new Date(), { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: zone ? "short" : undefined }));
    if (s.place_lost) { lost = true; first = s.position || 0; }
    show("place-lost", lost && s.state !== "admitted" && s.state !== "left");
    // The operator's message to the line: set, changed and cleared live.
    set("message", s.message || "");
    show("message", !!s.message && s.state !== "admitted" && s.state !== "left");
    if (s.queue_id) set("queue-id", s.queue_id);
    show("queue-id-line", !!s.queue_id && s.state !== "left");
    show("leave-form", s.state === "waiting" || s.state === "paused" || s.state === "scheduled");
    var wanted = tabTitle(s.state, s.position);
    if (document.title !== wanted) document.title = wanted;
  }

  function countdown() {
    if (!opensAt) return;
    var left = Math.max(0, Math.round((Date.parse(opensAt) - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), sec = left % 60;
    set("countdown", (h ? h + ":" : "") + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0"));
  }

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    if (inFlight || done) return;
    inFlight = true;
    var url = "/_anteroom/status?room=" + encodeURIComponent(room) + "&return_to=" + encodeURIComponent(back);
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) {
        inFlight = false;
        failures = 0;
        show("trouble", false);
        handle(s);
      })
      .catch(function () {
        inFlight = false;
        failures += 1;
        show("trouble", true);
        later(Math.min(30000, wait * Math.pow(2, failures)));
      });
  }

  // What a status object asks of the page: go to the shop, solve a challenge, or wait.
  function handle(s) {
    if (s.state === "admitted" || s.state === "open") {
      done = true;
      render({ state: "admitted", position: s.position, queue_length: s.queue_length, eta_seconds: null, queue_id: s.queue_id });
      setTimeout(function () { location.replace(s.return_to || back); }, 1200);
      return;
    }
    if (s.state === "challenge") {
      // A page served before the room asked for a proof has no solver: the page anew has.
      if (s.challenge && worker) solve(s.challenge, s); else location.reload();
      return;
    }
    render(s);
    later(s.poll_after_ms || wait);
  }

  // The challenge, solved off the page's thread. Progress is the chance that a solution
  // has been found by now (the work is a lottery: 2^difficulty tries on average).
  function solve(challenge, s) {
    if (solving) solving.terminate();
    render(s);
    var expected = Math.pow(2, challenge.difficulty);
    function progress(tried) {
      var percent = Math.min(99, Math.round(100 * (1 - Math.exp(-tried / expected))));
      hook("challenge-progress").forEach(function (el) { el.style.width = percent + "%"; el.parentNode.setAttribute("aria-valuenow", percent); });
    }
    try { solving = new Worker(worker); } catch (e) { show("trouble", true); return; }
    solving.onmessage = function (e) {
      if (e.data.tried != null) progress(e.data.tried);
      if (e.data.nonce == null) return;
      solving.terminate();
      solving = null;
      progress(expected * 10);
      join(challenge.prefix, e.data.nonce);
    };
    solving.onerror = function () { show("trouble", true); };
    solving.postMessage({ prefix: challenge.prefix, difficulty: challenge.difficulty });
  }

  function join(prefix, nonce) {
    // The solution rides in the query: a body would often cost the gateway a second read.
    var url = "/_anteroom/join?room=" + encodeURIComponent(room) + "&return_to=" + encodeURIComponent(back) +
      "&pow=" + encodeURIComponent(nonce) + "&challenge=" + encodeURIComponent(prefix);
    // A presale link's enqueue token goes along: the place is the account's.
    var enqueue = new URLSearchParams(location.search).get("enqueue_token");
    if (enqueue) url += "&enqueue_token=" + encodeURIComponent(enqueue);
    fetch(url, { method: "POST", credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      // A refused solution (400) carries a new challenge too.
      .then(function (r) { if (!r.ok && r.status !== 400) throw new Error(r.status); return r.json(); })
      .then(function (s) { failures = 0; show("trouble", false); handle(s); })
      .catch(function () {
        failures += 1;
        show("trouble", true);
        setTimeout(function () { join(prefix, nonce); }, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  // Back in view, or back online: ask now rather than when a throttled timer fires.
  function now() { if (!done && !solving) { clearTimeout(timer); poll(); } }
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") now(); });
  window.addEventListener("online", now);
  window.addEventListener("pageshow", function (e) { if (e.persisted) now(); });

  // Leaving gives the place to the next person: asked once, then done here without a reload.
  hook("leave-form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!window.confirm(texts.leave_confirm)) return;
      fetch(form.getAttribute("action"), { method: "POST", headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function () {
          done = true;
          clearTimeout(timer);
          lost = false;
          render({ state: "left", position: null, queue_length: 0, eta_seconds: null });
          show("trouble", false);
        })
        .catch(function () { show("trouble", true); });
    });
  });

  if (opensAt) {
    hook("opens-at").forEach(function (el) { el.textContent = time(new Date(opensAt), { dateStyle: "full", timeStyle: "short" }); });
  }
  countdown();
  if (opensAt) setInterval(countdown, 1000);
  var prefix = main.getAttribute("data-anteroom-challenge-prefix");
  if (prefix) {
    var difficulty = Number(main.getAttribute("data-anteroom-challenge-difficulty"));
    solve({ prefix: prefix, difficulty: difficulty }, { state: "challenge", queue_length: 0 });
  } else {
    later(wait);
  }
})();
