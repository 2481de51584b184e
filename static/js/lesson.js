// Lesson pages: Run buttons send SQL to the learner's console through the
// `pglab:run-sql` event (console.js listens); "Run this file" fetches the lab
// file's text first. Also: copy buttons, the docked console toggle, the
// active table-of-contents entry, and j/k (or n/p) to jump between exercises.
// Keyboard round trip (docs/accessibility.md): after a Run, a "See the
// result" link beside the button moves focus to the console's results;
// Escape anywhere in the dock (outside the editor and the terminal, where
// Escape means something else) brings focus back to where it was in the lesson.
(function () {
  "use strict";
  const layout = document.querySelector("[data-lesson-layout]");
  if (!layout) return;

  const toggleBtn = layout.querySelector("[data-dock-toggle]");
  // The toggle says whether the dock (a drawer on narrow screens) is open.
  function setDock(hidden) {
    layout.classList.toggle("dock-hidden", hidden);
    localStorage.setItem("pglab-dock-hidden", hidden ? "1" : "0");
    if (toggleBtn) toggleBtn.setAttribute("aria-expanded", String(!hidden));
  }
  function showDock() { setDock(false); }
  function runSql(sql, exercise) {
    showDock();
    document.dispatchEvent(new CustomEvent("pglab:run-sql", { detail: { sql, exercise: exercise || null } }));
  }
  const article = layout.querySelector("article.lesson");
  const dock = layout.querySelector("[data-dock]");
  if (article && !article.hasAttribute("tabindex")) article.tabIndex = -1;
  // The last control focused in the lesson column: where Escape in the dock returns.
  let back = null;
  layout.addEventListener("focusin", (e) => {
    if (article && article.contains(e.target) && e.target !== article) back = e.target;
  });
  function resultLink(button) {
    let link = button.nextElementSibling;
    if (link && link.classList.contains("go-result")) return;
    link = document.createElement("a");
    link.className = "btn btn-sm go-result";
    link.href = "#dock";
    link.dataset.goResult = "";
    link.textContent = "See the result";
    link.title = "Moves to the result in your console; Escape there comes back here";
    button.after(link);
  }
  function focusResults() {
    showDock();
    const results = dock && dock.querySelector(".con-results");
    if (!results) return false;
    if (!results.hasAttribute("tabindex")) results.tabIndex = -1;
    results.focus({ preventScroll: true });
    results.scrollIntoView({ block: "nearest", behavior: pglab.scrollBehavior() });
    return true;
  }
  if (dock) {
    dock.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target;
      if (/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.isContentEditable || t.closest(".con-editor, .terminal-screen, .cm-editor")) return;
      const to = back && back.isConnected ? back : article;
      if (!to) return;
      e.preventDefault();
      to.focus({ preventScroll: true });
      to.scrollIntoView({ block: "center", behavior: pglab.scrollBehavior() });
    });
  }
  function flash(button, text) {
    const old = button.dataset.label || button.textContent;
    button.dataset.label = old;
    button.textContent = text;
    setTimeout(() => { button.textContent = old; }, 1400);
  }

  if (localStorage.getItem("pglab-dock-hidden") === "1") setDock(true);

  document.addEventListener("click", async (e) => {
    const run = e.target.closest("[data-run-sql]");
    if (run) {
      const code = run.closest(".code-block").querySelector("pre code");
      runSql(code.textContent, run.dataset.exercise);
      flash(run, "▶ Sent");
      resultLink(run);
      return;
    }
    const file = e.target.closest("[data-run-file]");
    if (file) {
      const path = file.dataset.runFile;
      // aria-disabled, not disabled: a disabled button loses the keyboard's focus.
      if (file.getAttribute("aria-disabled") === "true") return;
      file.setAttribute("aria-disabled", "true");
      try {
        const res = await fetch("/files/" + path.split("/").map(encodeURIComponent).join("/") + "?raw=1", { credentials: "same-origin" });
        if (!res.ok) throw new Error(res.status + " " + res.statusText);
        runSql(await res.text(), file.dataset.exercise);
        flash(file, "▶ Sent to your console");
        resultLink(file);
      } catch (err) {
        flash(file, "Could not load the file: " + err.message);
      } finally {
        file.removeAttribute("aria-disabled");
      }
      return;
    }
    if (e.target.closest("[data-go-result]")) {
      if (focusResults()) e.preventDefault();
      return;
    }
    const copy = e.target.closest("[data-copy-code]");
    if (copy) {
      const code = copy.closest(".code-block").querySelector("pre code").textContent;
      try { await navigator.clipboard.writeText(code); flash(copy, "Copied"); } catch (_) { flash(copy, "Select and copy"); }
      return;
    }
    if (e.target.closest("[data-dock-toggle]")) setDock(!layout.classList.contains("dock-hidden"));
  });

  // The skip link to the dock opens it first.
  document.querySelectorAll('a.skip-link[href="#dock"]').forEach((a) => a.addEventListener("click", showDock));

  // j/k or n/p: next/previous exercise card, which takes the focus (so Tab
  // goes on to its buttons); "\" toggles the console.
  const cards = Array.from(document.querySelectorAll(".exercise-card"));
  cards.forEach((c) => { if (!c.hasAttribute("tabindex")) c.tabIndex = -1; });
  let current = -1;
  function focusCard(i) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, i));
    cards.forEach((c, j) => c.classList.toggle("current", j === current));
    cards[current].scrollIntoView({ behavior: pglab.scrollBehavior(), block: "start" });
    cards[current].focus({ preventScroll: true });
    history.replaceState(null, "", "#" + cards[current].id);
  }
  function cardInView() {
    const top = 80;
    let best = -1;
    cards.forEach((c, i) => { if (c.getBoundingClientRect().top <= top + 10) best = i; });
    return best;
  }
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || (t.closest && t.closest(".cm-editor, .xterm, [data-console]"));
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "n") { focusCard((current < 0 ? cardInView() : current) + 1); e.preventDefault(); }
    else if (e.key === "k" || e.key === "p") { focusCard((current < 0 ? cardInView() : current) - 1); e.preventDefault(); }
    else if (e.key === "\\") { layout.querySelector("[data-dock-toggle]")?.click(); }
  });

  // Scroll only the side bar (never the page) so the active entry shows.
  const side = document.querySelector(".lesson-side");
  function keepVisible(a) {
    if (!side) return;
    const top = a.offsetTop - side.offsetTop;
    if (top < side.scrollTop || top > side.scrollTop + side.clientHeight - 40) {
      side.scrollTop = Math.max(0, top - side.clientHeight / 3);
    }
  }

  // Highlight the contents entry of the heading being read.
  const links = new Map();
  document.querySelectorAll("[data-toc-link]").forEach((a) => links.set(a.dataset.tocLink, a));
  if ("IntersectionObserver" in window && links.size) {
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        links.forEach((a) => a.classList.remove("active"));
        const a = links.get(entry.target.id);
        if (a) { a.classList.add("active"); keepVisible(a); }
      }
    }, { rootMargin: "-60px 0px -70% 0px" });
    links.forEach((_, id) => { const el = document.getElementById(id); if (el) observer.observe(el); });
  }
})();
