// drbot web view: live updates and the time-zone switch. Every page reads the same without
// this script; an error here must never hide what the server rendered.
(function () {
  "use strict";

  // Times are rendered in UTC; the switch shows them in the viewer's zone and is remembered.
  var tz = document.getElementById("tz");
  function local() {
    try { return localStorage.getItem("drbot-time") === "local"; } catch (e) { return false; }
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function label(el) {
    if (!el.dataset.utc) { el.dataset.utc = el.textContent; }
    if (!local()) { el.textContent = el.dataset.utc; return; }
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) { return; }
    el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " local";
  }
  function relabel(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) { label(times[i]); }
  }
  if (tz) {
    tz.hidden = false;
    tz.textContent = local() ? "show UTC" : "show local time";
    tz.addEventListener("click", function () {
      try { localStorage.setItem("drbot-time", local() ? "utc" : "local"); } catch (e) { return; }
      tz.textContent = local() ? "show UTC" : "show local time";
      relabel(document);
    });
  }
  relabel(document);

  // The open incident page follows its timeline as events land.
  var log = document.querySelector("ol.timeline[data-stream]");
  if (!log || !window.EventSource) { return; }
  var unseen = 0;
  var notice = document.createElement("a");
  notice.className = "new-events";
  notice.hidden = true;
  notice.href = "#";
  notice.addEventListener("click", function (e) {
    e.preventDefault();
    log.lastElementChild && log.lastElementChild.scrollIntoView();
  });
  document.body.appendChild(notice);
  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }
  window.addEventListener("scroll", function () {
    if (atBottom()) { unseen = 0; notice.hidden = true; }
  });

  var source = new EventSource(log.dataset.stream);
  source.addEventListener("timeline", function (e) {
    if (document.getElementById("ev-" + e.lastEventId)) { return; }
    var follow = atBottom();
    log.insertAdjacentHTML("beforeend", e.data);
    relabel(log.lastElementChild);
    if (follow) {
      log.lastElementChild.scrollIntoView({ block: "end" });
    } else {
      // Someone reading further up is not moved; they are told how much is new.
      unseen += 1;
      notice.textContent = unseen + (unseen === 1 ? " new event" : " new events");
      notice.hidden = false;
    }
  });
  source.addEventListener("panel", function (e) {
    var live = document.getElementById("live");
    if (!live) { return; }
    live.outerHTML = e.data;
    relabel(document.getElementById("live"));
  });
  source.addEventListener("reload", function () {
    source.close();
    window.location.reload();
  });
})();
