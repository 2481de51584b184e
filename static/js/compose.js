// The compose file editor (templates/compose.html), in pglab's editor
// (static/js/editor.js: CodeMirror with a YAML mode, or the plain fallback):
// loads the learner's file from GET /api/sandbox/compose, saves it with PUT (a refused file shows the
// line and the reason, and nothing changes), and streams `up` / `reset`
// progress (POST /api/sandbox/compose/up, text lines) into the output pane.
(function () {
  const root = document.querySelector("[data-compose]");
  if (!root) return;
  const host = root.querySelector("[data-compose-yaml]");
  // Ctrl+Enter saves; a refused file marks its line.
  const yaml = pglab.Editor(host, {
    language: "yaml", label: "docker-compose.yml", placeholder: "", minLines: 16, maxLines: 30,
    onRun: () => act("save"),
  });
  pglab.leaveOnEscapeTab(host);
  pglab.compose = { editor: yaml };
  const stateLine = root.querySelector("[data-compose-state]");
  const errorLine = root.querySelector("[data-compose-error]");
  const output = root.querySelector("[data-compose-output]");
  const volumes = root.querySelector("[data-compose-volumes]");
  const buttons = root.querySelectorAll("[data-compose-action]");

  function showError(message) {
    errorLine.textContent = message || "";
    errorLine.hidden = !message;
    const line = /\bline (\d+)\b/.exec(message || "");
    yaml.markLine(line ? +line[1] : null);
  }

  // withText: put the saved file in the editor (on page load and after a
  // reset); otherwise the learner's text stays, a refused one included, so
  // the line an error names is the line they see.
  async function load(withText) {
    const data = await pglab.api("GET", "/api/sandbox/compose");
    if (withText) yaml.setValue(data.yaml);
    const caps = data.caps;
    stateLine.textContent =
      (data.in_force === "compose" ? "Your compose file is in force." : "pglab's own settings are in force.") +
      ` Caps: ${caps.memory_mib} MiB, ${caps.cpus} CPU, ${caps.pids} processes; images: ${caps.images.join(", ")}.`;
    stateLine.dataset.inForce = data.in_force;
  }

  async function save() {
    showError("");
    try {
      const data = await pglab.api("PUT", "/api/sandbox/compose", { yaml: yaml.value });
      output.textContent = "Saved." + (data.notes.length ? "\n ! " + data.notes.join("\n ! ") : "") + "\n";
      return true;
    } catch (e) {
      showError(e.message);
      return false;
    }
  }

  // POSTs and appends the streamed lines as they arrive.
  async function stream(url) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": pglab.csrfToken() },
    });
    if (!res.ok) {
      const text = await res.text();
      let message = text;
      try { message = JSON.parse(text).error; } catch (_) { /* plain text */ }
      showError(message);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      output.textContent += decoder.decode(value, { stream: true });
    }
    output.dataset.done = output.textContent.includes("✔") ? "ok" : "failed";
  }

  async function act(action) {
    buttons.forEach((b) => (b.disabled = true));
    output.dataset.done = "";
    try {
      if (action === "save") {
        await save();
      } else if (action === "up") {
        if (await save()) {
          output.textContent = "";
          await stream("/api/sandbox/compose/up");
        }
      } else if (action === "down") {
        showError("");
        const data = await pglab.api("POST", "/api/sandbox/compose/down", { volumes: volumes.checked });
        output.textContent = data.volumes_removed ? "Container and volume removed.\n" : "Container removed.\n";
        output.dataset.done = "ok";
      } else if (action === "reset") {
        showError("");
        output.textContent = "";
        await stream("/api/sandbox/compose/reset");
      }
      await load(action === "reset");
    } catch (e) {
      showError(e.message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  buttons.forEach((b) => b.addEventListener("click", () => act(b.dataset.composeAction)));
  load(true).catch((e) => showError(e.message));
})();
