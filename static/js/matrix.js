// The instructor's classroom matrix: sort by column, filter by name (press /),
// show only stuck learners, apply live progress events (SSE) to cells and
// totals, and move between cells with the arrow keys. Also the stop/reset buttons of the learner detail page.
(function () {
  const table = document.querySelector("[data-matrix]");
  if (table) matrix(table);

  function matrix(table) {
    const body = table.tBodies[0];
    const exercises = JSON.parse(document.getElementById("matrix-exercises").textContent);
    const filter = document.querySelector("[data-matrix-filter]");
    const stuckOnly = document.querySelector("[data-matrix-stuck]");
    const live = document.querySelector("[data-live-status]");
    let sortKey = "name", sortDir = 1;

    function apply() {
      const q = (filter.value || "").toLowerCase();
      for (const row of body.rows) {
        const show = row.dataset.name.toLowerCase().includes(q) && (!stuckOnly.checked || row.hasAttribute("data-stuck"));
        row.hidden = !show;
      }
    }
    filter.addEventListener("input", apply);
    stuckOnly.addEventListener("change", apply);
    document.addEventListener("keydown", (e) => {
      if (e.key === "/" && document.activeElement !== filter) { e.preventDefault(); filter.focus(); }
    });

    table.querySelectorAll("th[data-sort]").forEach((th) => {
      th.addEventListener("click", () => {
        const key = th.dataset.sort;
        sortDir = key === sortKey ? -sortDir : (key === "name" ? 1 : -1);
        sortKey = key;
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const va = key === "name" ? a.dataset.name.toLowerCase() : Number(a.dataset[key]);
          const vb = key === "name" ? b.dataset.name.toLowerCase() : Number(b.dataset[key]);
          return (va < vb ? -1 : va > vb ? 1 : 0) * sortDir;
        });
        rows.forEach((r) => body.appendChild(r));
        table.querySelectorAll("th[data-sort]").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      });
    });

    function recount() {
      const totals = exercises.map(() => 0);
      for (const row of body.rows) {
        let passed = 0;
        row.querySelectorAll("td.cell").forEach((td) => {
          if (td.classList.contains("passed")) { passed++; totals[Number(td.dataset.ex)]++; }
        });
        row.dataset.passed = passed;
        row.querySelector("[data-passed-cell]").textContent = passed;
      }
      totals.forEach((n, i) => { const td = table.querySelector(`[data-total="${i}"]`); if (td) td.textContent = n; });
    }

    const LABEL = { not_started: "not-started", in_progress: "in-progress", passed: "passed" };
    function onProgress(ev) {
      const row = body.querySelector(`tr[data-user="${ev.user_id}"]`);
      const col = exercises.indexOf(ev.exercise_id);
      // A learner who joined after the page was drawn: draw it again.
      if (!row) { location.reload(); return; }
      if (col < 0) return;
      const td = row.querySelector(`td.cell[data-ex="${col}"]`);
      td.classList.remove("passed", "in-progress", "not-started");
      td.classList.add(LABEL[ev.status] || "in-progress");
      td.title = (LABEL[ev.status] || "").replace("-", " ");
      const said = td.querySelector("[data-cell-label]");
      if (said) said.textContent = td.title;
      td.classList.add("flash");
      setTimeout(() => td.classList.remove("flash"), 1200);
      row.dataset.activity = Math.floor(Date.now() / 1000);
      recount();
    }

    // The cells are one tab stop (roving tabindex): arrow keys, Home and End
    // move between them, skipping rows the filter hides.
    function visibleRows() { return Array.from(body.rows).filter((r) => !r.hidden); }
    function cellAt(rowIndex, col) {
      const rows = visibleRows();
      const row = rows[Math.max(0, Math.min(rows.length - 1, rowIndex))];
      return row ? row.querySelector(`td.cell[data-ex="${col}"]`) : null;
    }
    function rove(td) {
      table.querySelectorAll("td.cell[tabindex='0']").forEach((c) => { c.tabIndex = -1; });
      td.tabIndex = 0;
    }
    const first = body.querySelector("td.cell");
    if (first) first.tabIndex = 0;
    table.addEventListener("focusin", (e) => { const td = e.target.closest("td.cell"); if (td) rove(td); });
    table.addEventListener("keydown", (e) => {
      const td = e.target.closest && e.target.closest("td.cell");
      if (!td) return;
      const col = Number(td.dataset.ex);
      const r = visibleRows().indexOf(td.parentElement);
      const last = exercises.length - 1;
      const moves = {
        ArrowRight: [r, Math.min(last, col + 1)], ArrowLeft: [r, Math.max(0, col - 1)],
        ArrowDown: [r + 1, col], ArrowUp: [r - 1, col], Home: [r, 0], End: [r, last],
      };
      const to = moves[e.key];
      if (!to) return;
      e.preventDefault();
      const next = cellAt(to[0], to[1]);
      if (next) { rove(next); next.focus(); }
    });

    const es = new EventSource(`/api/instructor/classrooms/${table.dataset.classroom}/events`);
    es.addEventListener("open", () => { live.textContent = "live"; live.classList.add("ok"); });
    es.addEventListener("error", () => { live.textContent = "live updates reconnecting…"; live.classList.remove("ok"); });
    es.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
    es.addEventListener("reload", () => location.reload());
  }

  document.addEventListener("click", async (e) => {
    const b = e.target.closest("[data-learner-sandbox]");
    if (!b) return;
    if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
    const out = document.querySelector("[data-learner-sandbox-result]");
    b.disabled = true;
    out.textContent = b.dataset.learnerSandbox === "reset" ? "resetting…" : "stopping…";
    try {
      await pglab.api("POST", `/api/instructor/learners/${b.dataset.user}/sandbox/${b.dataset.learnerSandbox}`);
      out.textContent = "done";
      setTimeout(() => location.reload(), 600);
    } catch (err) {
      out.textContent = err.message;
    } finally {
      b.disabled = false;
    }
  });
})();
