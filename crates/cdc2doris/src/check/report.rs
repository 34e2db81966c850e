//! The report of `cdc2doris check`: one line per check.

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Pass,
    /// The service can run, but something deserves a look.
    Warn,
    /// The service cannot run like this.
    Fail,
    /// The check was not run.
    Skip,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// The result.
    pub outcome: Outcome,
    /// What was checked: a TOML path or a check name.
    pub subject: String,
    /// What was found, and what to do on failure.
    pub detail: String,
}

/// Every check's line, in the order run.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The lines.
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    /// Adds a line.
    pub fn push(
        &mut self,
        outcome: Outcome,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.lines.push(CheckLine {
            outcome,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.lines.iter().any(|l| l.outcome == Outcome::Fail)
    }

    /// The report as printed: `pass  subject: detail`, one line per check.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{}  {}: {}\n", l.outcome.as_str(), l.subject, l.detail))
            .collect()
    }
}
