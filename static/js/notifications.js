// Live notifications for idle listening console panes. A pane whose session
// has run LISTEN (the run answer's `listening`) polls
// GET /api/sessions/{name}/notifications while it is idle and appends what
// arrives, worded as psql prints it, to a log under its results: an ARIA live
// region (role="log"), so a screen reader hears each one. While the pane runs
// something it does not poll (notifications then come with the run's
// statements); the server also ends a pending poll at once when a run starts.
//
// console.js calls pglab.notifications.attach(pane) for every pane and fires
// `pglab:sql-start` / `pglab:sql-done` (detail.session, detail.listening).
(function () {
  const pglab = (window.pglab = window.pglab || {});
  const WAIT_MS = 8000;
  const KEEP = 200; // lines kept in a pane's log

  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  function attach(pane) {
    const log = document.createElement("div");
    log.className = "con-live-notify";
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", "Notifications " + pane.name);
    log.hidden = true;
    const results = pane.el.querySelector(".con-results");
    results.insertAdjacentElement("afterend", log);

    const w = { listening: false, running: false, polling: false };

    function add(lines, dropped) {
      for (const text of lines) {
        const line = document.createElement("div");
        line.className = "con-notify";
        line.textContent = text;
        log.appendChild(line);
      }
      if (dropped) {
        const line = document.createElement("div");
        line.className = "con-notify con-notify-dropped";
        line.textContent = "… and " + dropped.toLocaleString("en") + " more notifications not shown";
        log.appendChild(line);
      }
      while (log.childElementCount > KEEP) log.firstElementChild.remove();
      log.hidden = !log.childElementCount;
    }

    async function loop() {
      if (w.polling) return;
      w.polling = true;
      try {
        while (w.listening && !w.running && !pane.closed) {
          let res;
          try {
            res = await pglab.api("GET", "/api/sessions/" + encodeURIComponent(pane.name) + "/notifications?wait_ms=" + WAIT_MS);
          } catch (e) {
            if (e.status === 404) { w.listening = false; break; } // the session is gone
            await sleep(3000); // offline for a moment
            continue;
          }
          if (res.notifications.length || res.dropped) add(res.notifications, res.dropped);
          if (res.running) break; // sql-done starts the loop again
          if (!res.listening) w.listening = false;
        }
      } finally {
        w.polling = false;
      }
    }

    document.addEventListener("pglab:sql-start", (e) => {
      if (!e.detail || e.detail.session !== pane.name) return;
      w.running = true;
      // The pane now shows this run: the log starts again after it.
      log.replaceChildren();
      log.hidden = true;
    });
    document.addEventListener("pglab:sql-done", (e) => {
      if (!e.detail || e.detail.session !== pane.name) return;
      w.running = false;
      w.listening = !!e.detail.listening;
      if (w.listening) loop();
    });
  }

  pglab.notifications = { attach };
})();
