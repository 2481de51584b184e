//! psql's `\if`, `\elif`, `\else` and `\endif`: the stack of a script's
//! conditional blocks, as psql's `ConditionalStack` keeps it. Items in an
//! inactive branch are not run (nor interpolated); an expression psql
//! cannot read as a boolean is reported and taken as false without ending
//! the script; a misplaced `\elif`, `\else` or `\endif` is an error.

use super::vars::parse_bool;

/// The state of one `\if` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The current branch runs.
    True,
    /// No branch has run yet; the current one does not.
    False,
    /// A branch ran before: the rest are skipped.
    Done,
    /// The whole block is inside an inactive branch.
    Ignored,
    /// After `\else` that runs.
    ElseTrue,
    /// After `\else` that does not.
    ElseFalse,
}

/// What a conditional command did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to print.
    Quiet,
    /// psql prints this on standard error and goes on (an expression that
    /// is not a boolean: the branch is taken as false).
    Note(String),
    /// An error of the script (psql's `ON_ERROR_STOP` ends it).
    Error(String),
}

/// A run's open `\if` blocks, outermost first.
#[derive(Debug, Default)]
pub struct Branches {
    stack: Vec<State>,
}

/// Whether `name` is one of the conditional commands.
pub fn is_conditional(name: &str) -> bool {
    matches!(name, "if" | "elif" | "else" | "endif")
}

fn evaluate(expr: Option<&str>) -> (bool, Outcome) {
    let value = expr.unwrap_or("");
    match parse_bool(value) {
        Some(b) => (b, Outcome::Quiet),
        None => (
            false,
            Outcome::Note(format!(
                "unrecognized value \"{value}\" for \"\\if expression\": Boolean expected"
            )),
        ),
    }
}

impl Branches {
    /// Whether items run here (every open block is in a running branch).
    pub fn active(&self) -> bool {
        self.stack
            .last()
            .is_none_or(|s| matches!(s, State::True | State::ElseTrue))
    }

    /// Whether a block is still open (psql's "reached EOF without finding
    /// closing \endif(s)" at the end of a script).
    pub fn open(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Applies `\NAME EXPR` (`expr`: the first argument, interpolated).
    pub fn apply(&mut self, name: &str, expr: Option<&str>) -> Outcome {
        match name {
            "if" => {
                if !self.active() {
                    self.stack.push(State::Ignored);
                    return Outcome::Quiet;
                }
                let (b, out) = evaluate(expr);
                self.stack.push(if b { State::True } else { State::False });
                out
            }
            "elif" => match self.stack.last().copied() {
                None => Outcome::Error("\\elif: no matching \\if".into()),
                Some(State::ElseTrue | State::ElseFalse) => {
                    Outcome::Error("\\elif: cannot occur after \\else".into())
                }
                Some(State::True | State::Done) => {
                    self.set(State::Done);
                    Outcome::Quiet
                }
                Some(State::Ignored) => Outcome::Quiet,
                Some(State::False) => {
                    let (b, out) = evaluate(expr);
                    self.set(if b { State::True } else { State::False });
                    out
                }
            },
            "else" => match self.stack.last().copied() {
                None => Outcome::Error("\\else: no matching \\if".into()),
                Some(State::ElseTrue | State::ElseFalse) => {
                    Outcome::Error("\\else: cannot occur after \\else".into())
                }
                Some(State::False) => {
                    self.set(State::ElseTrue);
                    Outcome::Quiet
                }
                Some(State::True | State::Done | State::Ignored) => {
                    self.set(State::ElseFalse);
                    Outcome::Quiet
                }
            },
            "endif" => match self.stack.pop() {
                None => Outcome::Error("\\endif: no matching \\if".into()),
                Some(_) => Outcome::Quiet,
            },
            _ => Outcome::Quiet,
        }
    }

    fn set(&mut self, state: State) {
        if let Some(top) = self.stack.last_mut() {
            *top = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `\` commands and `echo` lines; the echoed words that ran.
    fn script(lines: &[&str]) -> (Vec<String>, Vec<Outcome>) {
        let mut b = Branches::default();
        let mut ran = Vec::new();
        let mut said = Vec::new();
        for line in lines {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap();
            if is_conditional(name) {
                let out = b.apply(name, words.next());
                if out != Outcome::Quiet {
                    said.push(out);
                }
            } else if b.active() {
                ran.push(words.next().unwrap_or_default().to_string());
            }
        }
        (ran, said)
    }

    #[test]
    fn branches_run_as_psql_runs_them() {
        let (ran, said) = script(&[
            "if on",
            "echo one",
            "elif true",
            "echo two",
            "else",
            "echo three",
            "endif",
            "if fal",
            "echo a",
            "elif of",
            "echo b",
            "elif 1",
            "echo c",
            "else",
            "echo d",
            "endif",
            "if false",
            "if true",
            "echo nested",
            "else",
            "echo nested-else",
            "endif",
            "endif",
            "if t",
            "elif bogus",
            "echo no",
            "endif",
        ]);
        assert_eq!(ran, ["one", "c"]);
        // `\elif bogus` after a branch that ran is never evaluated.
        assert!(said.is_empty(), "{said:?}");
    }

    #[test]
    fn an_unreadable_expression_is_false_and_reported() {
        let (ran, said) = script(&[
            "if maybe",
            "echo four",
            "else",
            "echo five",
            "endif",
            "if",
            "echo six",
            "endif",
        ]);
        assert_eq!(ran, ["five"]);
        assert_eq!(
            said,
            [
                Outcome::Note(
                    "unrecognized value \"maybe\" for \"\\if expression\": Boolean expected".into()
                ),
                Outcome::Note(
                    "unrecognized value \"\" for \"\\if expression\": Boolean expected".into()
                ),
            ]
        );
    }

    #[test]
    fn misplaced_commands_are_errors() {
        for (lines, message) in [
            (&["else"][..], "\\else: no matching \\if"),
            (&["elif 1"][..], "\\elif: no matching \\if"),
            (&["endif"][..], "\\endif: no matching \\if"),
            (
                &["if t", "else", "elif t"][..],
                "\\elif: cannot occur after \\else",
            ),
            (
                &["if t", "else", "else"][..],
                "\\else: cannot occur after \\else",
            ),
        ] {
            let (_, said) = script(lines);
            assert_eq!(said, [Outcome::Error(message.into())], "{lines:?}");
        }
        let mut b = Branches::default();
        b.apply("if", Some("on"));
        assert!(b.open());
        b.apply("endif", None);
        assert!(!b.open());
    }
}
