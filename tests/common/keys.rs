//! Keyboard-only driving of a [`Browser`] for the accessibility tests: keys
//! go through WebDriver key actions (real key events in Chromium, so
//! `:focus-visible` applies as for a person), never clicks or script
//! `.click()`. After every Tab the focused element is described, must show a
//! visible focus ring, and must have moved (focus is never trapped).

#![allow(dead_code, clippy::unwrap_used)]

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;

use super::browser::Browser;

/// JS (a function body with `el` bound) that describes the focused element
/// and whether its focus is visible: an outline on it or on one of its five
/// nearest ancestors (the editor and the terminal draw their ring on their
/// container with `:focus-within`; their own input is invisible), or a
/// box-shadow on the element itself.
const DESCRIBE: &str = r##"
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return { desc: "body", ring: false, body: true };
  // A ring counts only on a box that is drawn (xterm's input is a 0 x 0,
  // transparent textarea: its outline would show nothing).
  const ringOn = (e, own) => {
    const cs = getComputedStyle(e);
    const box = e.getBoundingClientRect();
    if (box.width < 2 || box.height < 2 || cs.opacity === "0" || cs.visibility === "hidden") return false;
    return (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2) || (own && cs.boxShadow !== "none" && !!cs.boxShadow);
  };
  let ring = false;
  for (let e = el, i = 0; e && i < 6 && !ring; e = e.parentElement, i++) ring = ringOn(e, i === 0);
  const text = (el.getAttribute("aria-label") || el.textContent || el.value || "").replace(/\s+/g, " ").trim().slice(0, 50);
  const desc = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") +
    (text ? " \"" + text + "\"" : "");
  return { desc, ring, body: false };
"##;

/// What [`Keys::focused`] reports.
#[derive(Debug, Clone)]
pub struct Focus {
    pub desc: String,
    pub ring: bool,
    pub body: bool,
}

/// The keyboard of one browser, with the path focus took so far.
pub struct Keys<'a> {
    pub browser: &'a Browser,
    /// Every element Tab or Shift+Tab reached, in order (for failure messages).
    pub path: Vec<String>,
}

impl<'a> Keys<'a> {
    pub fn new(browser: &'a Browser) -> Self {
        Self {
            browser,
            path: Vec::new(),
        }
    }

    /// Presses and releases each key in turn (letters, digits, punctuation
    /// or [`Key`] codes).
    pub async fn press(&self, keys: &[char]) {
        let mut seq = KeyActions::new("keyboard".into());
        for &k in keys {
            seq = seq
                .then(KeyAction::Down { value: k })
                .then(KeyAction::Up { value: k });
        }
        self.browser.client.perform_actions(seq).await.unwrap();
    }

    /// Holds `modifier` while pressing `key` (e.g. Control + Enter).
    pub async fn chord(&self, modifier: Key, key: char) {
        let m: char = modifier.into();
        let seq = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: m })
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key })
            .then(KeyAction::Up { value: m });
        self.browser.client.perform_actions(seq).await.unwrap();
    }

    /// Types `text` key by key into whatever has the focus.
    pub async fn type_text(&self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(40) {
            self.press(chunk).await;
        }
    }

    /// Empties the focused editor: Ctrl+A, then Backspace (typing over a
    /// selection would let Chromium's own contenteditable editing insert a
    /// `style` attribute, which the Content-Security-Policy reports).
    pub async fn clear_editor(&self) {
        self.chord(Key::Control, 'a').await;
        self.press(&[Key::Backspace.into()]).await;
    }

    pub async fn tab(&self) {
        self.press(&[Key::Tab.into()]).await;
    }

    pub async fn shift_tab(&self) {
        self.chord(Key::Shift, Key::Tab.into()).await;
    }

    pub async fn enter(&self) {
        self.press(&[Key::Enter.into()]).await;
    }

    pub async fn space(&self) {
        self.press(&[' ']).await;
    }

    pub async fn escape(&self) {
        self.press(&[Key::Escape.into()]).await;
    }

    /// The focused element, described.
    pub async fn focused(&self) -> Focus {
        let v = self.browser.js(DESCRIBE).await;
        Focus {
            desc: v["desc"].as_str().unwrap_or("").to_string(),
            ring: v["ring"] == true,
            body: v["body"] == true,
        }
    }

    /// Whether the focused element satisfies `predicate` (JS with `el`).
    pub async fn focus_is(&self, predicate: &str) -> bool {
        self.browser
            .js(&format!(
                "const el = document.activeElement; return !!(el && ({predicate}));"
            ))
            .await
            == true
    }

    /// Asserts that the focused element satisfies `predicate` and shows a
    /// visible focus ring; `what` names the step.
    pub async fn expect(&self, predicate: &str, what: &str) {
        let f = self.focused().await;
        assert!(
            self.focus_is(predicate).await,
            "{what}: focus is on {} instead (path so far: {})",
            f.desc,
            self.tail()
        );
        assert!(f.ring, "{what}: the focus on {} is not visible", f.desc);
    }

    /// One Tab (or Shift+Tab): focus moves to an element with a visible ring.
    pub async fn step(&mut self, back: bool) -> Focus {
        self.browser
            .js("window.__kbPrev = document.activeElement; return true")
            .await;
        if back {
            self.shift_tab().await;
        } else {
            self.tab().await;
        }
        let f = self.focused().await;
        let moved = self
            .browser
            .js("return document.activeElement !== window.__kbPrev")
            .await
            == true;
        self.path.push(f.desc.clone());
        assert!(
            moved,
            "focus is trapped on {} ({} did not move it); path: {}",
            f.desc,
            if back { "Shift+Tab" } else { "Tab" },
            self.tail()
        );
        assert!(
            f.body || f.ring,
            "focus on {} is not visible (no outline); path: {}",
            f.desc,
            self.tail()
        );
        f
    }

    /// Presses Tab (or Shift+Tab) until the focused element satisfies
    /// `predicate` (JS with `el`), at most `max` times; every stop on the way
    /// must show its focus. Returns how many presses it took.
    pub async fn tab_to(&mut self, predicate: &str, back: bool, max: usize, what: &str) -> usize {
        for n in 1..=max {
            self.step(back).await;
            if self.focus_is(predicate).await {
                return n;
            }
        }
        panic!(
            "{what}: not reached after {max} {}; path: {}",
            if back { "Shift+Tabs" } else { "Tabs" },
            self.tail()
        );
    }

    /// The last stops of the focus path, for messages.
    pub fn tail(&self) -> String {
        let from = self.path.len().saturating_sub(12);
        self.path[from..].join(" → ")
    }
}
