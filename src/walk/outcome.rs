//! A step's outcome (pass, fail with evidence and remedy, not evaluated with the reason), an
//! app's outcomes by step, and [`walk`]: the one rule of where a walk stops.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

use super::step::Step;

/// A step's result: a word, or a reference to what was found. A host-level outcome (steps 3-6)
/// is the same for every app, so each app's copy is a reference, not another string.
///
/// A step with no outcome at all was not evaluated for a reason nobody needs
/// to read (not probed yet); one that no probe could judge says why with [`Outcome::NotEvaluated`].
/// Neither is ever a pass: the walk goes past them, and they have no `appproxy_flow_step_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail(Arc<Failed>),
    NotEvaluated(Arc<Unjudged>),
}

/// What a failing step found. A remedy or reason that is the same text for every app is
/// borrowed, not copied into each of thousands of apps' outcomes.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub evidence: String,
    /// What to change where, when the step knows better than its general remedy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Cow<'static, str>>,
}

/// Why nothing could judge the step here (a wildcard URL, an app that is no web app).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Unjudged {
    pub reason: Cow<'static, str>,
}

impl Outcome {
    pub fn fail(evidence: impl Into<String>) -> Self {
        Self::Fail(Arc::new(Failed {
            evidence: evidence.into(),
            remedy: None,
        }))
    }

    /// A failure with a remedy specific to what was found (which file, which setting).
    pub fn fail_with_remedy(
        evidence: impl Into<String>,
        remedy: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Fail(Arc::new(Failed {
            evidence: evidence.into(),
            remedy: Some(remedy.into()),
        }))
    }

    pub fn not_evaluated(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::NotEvaluated(Arc::new(Unjudged {
            reason: reason.into(),
        }))
    }

    pub fn passed(&self) -> bool {
        matches!(self, Self::Pass)
    }

    /// Pass or fail: a probe judged the step.
    pub fn evaluated(&self) -> bool {
        !matches!(self, Self::NotEvaluated(_))
    }

    /// What a failure found; `None` unless the step failed.
    pub fn evidence(&self) -> Option<&str> {
        match self {
            Self::Fail(failed) => Some(&failed.evidence),
            Self::Pass | Self::NotEvaluated(_) => None,
        }
    }

    /// Why no probe could judge the step; `None` unless it was not evaluated.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::NotEvaluated(unjudged) => Some(&unjudged.reason),
            Self::Pass | Self::Fail(_) => None,
        }
    }
}

/// The outcomes known for one app, by step: a slot per step, in flowchart order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepResults([Option<Outcome>; 10]);

impl StepResults {
    pub fn set(&mut self, step: Step, outcome: Outcome) {
        self.0[step.index()] = Some(outcome);
    }

    pub fn get(&self, step: Step) -> Option<&Outcome> {
        self.0[step.index()].as_ref()
    }

    /// Evaluated steps in flowchart order.
    pub fn iter(&self) -> impl Iterator<Item = (Step, &Outcome)> {
        Step::ALL
            .iter()
            .zip(&self.0)
            .filter_map(|(step, outcome)| Some((*step, outcome.as_ref()?)))
    }
}

/// A map from step name to outcome, as the diagnosis API has always shown it.
impl Serialize for StepResults {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (step, outcome) in self.iter() {
            map.serialize_entry(&step, outcome)?;
        }
        map.end()
    }
}

/// Where a walk stopped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    found: Arc<Failed>,
}

impl Failure {
    pub fn evidence(&self) -> &str {
        &self.found.evidence
    }

    /// The specific remedy, when the step found one; otherwise the step's general remedy.
    pub fn remedy(&self) -> &str {
        self.found
            .remedy
            .as_deref()
            .unwrap_or(self.step.info().remedy)
    }
}

impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut failure = serializer.serialize_struct("Failure", 3)?;
        failure.serialize_field("step", &self.step)?;
        failure.serialize_field("evidence", self.evidence())?;
        failure.serialize_field("remedy", self.remedy())?;
        failure.end()
    }
}

/// Walks the chart in order and stops at the first failing step. Steps without an outcome were
/// not evaluated (for example the Windows service check on Linux) and are walked past: only
/// evidence of a failure stops the walk. `None` means every evaluated step passed.
pub fn walk(results: &StepResults) -> Option<Failure> {
    Step::ALL.iter().find_map(|step| match results.get(*step) {
        Some(Outcome::Fail(found)) => Some(Failure {
            step: *step,
            found: Arc::clone(found),
        }),
        Some(Outcome::Pass | Outcome::NotEvaluated(_)) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(outcomes: &[(Step, Outcome)]) -> StepResults {
        let mut results = StepResults::default();
        for (step, outcome) in outcomes {
            results.set(*step, outcome.clone());
        }
        results
    }

    #[test]
    fn nothing_evaluated_means_no_failing_step() {
        assert_eq!(walk(&StepResults::default()), None);
    }

    #[test]
    fn every_step_passing_means_no_failing_step() {
        let all: Vec<_> = Step::ALL.iter().map(|s| (*s, Outcome::Pass)).collect();
        assert_eq!(walk(&results(&all)), None);
    }

    #[test]
    fn the_walk_stops_at_the_only_failing_step() {
        for failing in Step::ALL {
            let outcomes: Vec<_> = Step::ALL
                .iter()
                .map(|s| {
                    (
                        *s,
                        if *s == failing {
                            Outcome::fail("why")
                        } else {
                            Outcome::Pass
                        },
                    )
                })
                .collect();
            let failure = walk(&results(&outcomes)).unwrap();
            assert_eq!(failure.step, failing);
            assert_eq!(failure.evidence(), "why");
        }
    }

    #[test]
    fn the_earliest_of_several_failures_is_reported() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::PortTest, Outcome::fail("443 closed")),
            (Step::InternalNetwork, Outcome::fail("refused")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::PortTest);
        assert_eq!(walk(&r).unwrap().evidence(), "443 closed");
    }

    #[test]
    fn a_specific_remedy_replaces_the_general_one() {
        let r = results(&[(
            Step::ForwardProxy,
            Outcome::fail_with_remedy("407", "allow CONNECT without authentication"),
        )]);
        assert_eq!(
            walk(&r).unwrap().remedy(),
            "allow CONNECT without authentication"
        );
        let r = results(&[(Step::ForwardProxy, Outcome::fail("407"))]);
        assert_eq!(walk(&r).unwrap().remedy(), Step::ForwardProxy.info().remedy);
    }

    #[test]
    fn steps_not_evaluated_are_walked_past() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::BackendTimeout, Outcome::fail("slow")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::BackendTimeout);
    }

    #[test]
    fn a_step_no_probe_could_judge_is_walked_past_never_failed() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::InternalUrl, Outcome::not_evaluated("wildcard")),
            (Step::BackendTimeout, Outcome::fail("slow")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::BackendTimeout);
        let r = results(&[(Step::InternalUrl, Outcome::not_evaluated("wildcard"))]);
        assert_eq!(walk(&r), None);
    }

    #[test]
    fn a_later_pass_does_not_hide_an_earlier_failure() {
        let r = results(&[
            (Step::EscalateAppFlow, Outcome::Pass),
            (
                Step::ConnectorInstalled,
                Outcome::fail("no active connector"),
            ),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::ConnectorInstalled);
    }
}
