// Exercise progress on lesson pages: fills every [data-exercise-status="ID"]
// badge from /api/progress and wires [data-check-exercise="ID"] buttons
// ("Check my work") to POST /api/exercises/ID/check, showing the answer in
// [data-check-result="ID"].
(function () {
  const LABEL = { not_started: "not started", in_progress: "in progress", passed: "passed" };
  const CLASS = { not_started: "", in_progress: "warn", passed: "ok" };

  function setStatus(id, status) {
    document.querySelectorAll(`[data-exercise-status="${CSS.escape(id)}"]`).forEach((el) => {
      el.dataset.status = status;
      if (el.classList.contains("badge")) {
        el.textContent = LABEL[status] || status;
        el.classList.remove("ok", "warn", "err");
        if (CLASS[status]) el.classList.add(CLASS[status]);
      } else {
        // The dot is drawn for the eye; a reader gets the word beside it.
        el.title = LABEL[status] || status;
        let said = el.nextElementSibling;
        if (!said || !said.classList.contains("sr-only")) {
          said = document.createElement("span");
          said.className = "sr-only";
          el.after(said);
        }
        said.textContent = "(" + (LABEL[status] || status) + ") ";
      }
    });
  }

  async function refresh() {
    try {
      const data = await pglab.api("GET", "/api/progress");
      data.exercises.forEach((e) => setStatus(e.id, e.status));
    } catch (_) {
      /* signed out or offline: badges keep their text */
    }
  }

  async function check(button) {
    const id = button.dataset.checkExercise;
    const out = document.querySelector(`[data-check-result="${CSS.escape(id)}"]`);
    // aria-disabled, not disabled: a disabled button loses the keyboard's focus.
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    const label = button.textContent;
    button.textContent = "Checking…";
    if (out) { out.className = "check-result"; out.textContent = ""; }
    try {
      const r = await pglab.api("POST", `/api/exercises/${encodeURIComponent(id)}/check`);
      setStatus(id, r.status);
      if (out) {
        out.classList.add(r.passed ? "ok" : "err");
        out.textContent = (r.passed ? "✓ " : "✗ ") + r.message;
      }
    } catch (e) {
      if (out) { out.classList.add("err"); out.textContent = e.message; }
    } finally {
      button.removeAttribute("aria-disabled");
      button.textContent = label;
    }
  }

  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-check-exercise]");
    if (b) check(b);
  });
  // Running SQL on an exercise marks it in progress: refresh after runs.
  document.addEventListener("pglab:sql-done", refresh);
  if (document.querySelector("[data-exercise-status]")) refresh();
})();
