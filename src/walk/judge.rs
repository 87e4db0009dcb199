//! The one shape of every step family, as blackbox_exporter's probers share one function type:
//! a family takes its own evidence and concludes its own steps, and only those. The inventory
//! judges steps 1-2, the connector's services step 2, the endpoints 3-4, the proxies 5-6, an
//! app's answers 7-10. What one family's evidence shows about another's step (an app's backend
//! proxy refusing it, App Proxy's error page) is handed to that family to word, and the
//! precedence between them is [`crate::verdict`]'s.

use super::outcome::StepResults;
use super::step::Step;

pub trait Judge {
    /// The steps this family concludes; it sets no other.
    const STEPS: &'static [Step];

    /// An outcome for each of its steps it could judge; none for the rest.
    fn judge(&self) -> StepResults;
}

/// `family`'s outcomes, held to its own steps: a family that set another's would be a bug, so
/// such an outcome is dropped (and fails in tests).
pub fn judged<J: Judge>(family: &J) -> StepResults {
    let mut own = StepResults::default();
    for (step, outcome) in family.judge().iter() {
        debug_assert!(J::STEPS.contains(&step), "{step:?} is not this family's");
        if J::STEPS.contains(&step) {
            own.set(step, outcome.clone());
        }
    }
    own
}
