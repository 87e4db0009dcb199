//! The walk: Microsoft's "Debug Application Proxy connector issues" flowchart as data
//! ([`Step`], [`STEPS`]), a step's [`Outcome`], [`Judge`], the one shape of every step family,
//! and [`walk`], the one rule of where a walk stops. Every module below the outputs shares these
//! types; this one imports none of them.

mod judge;
mod key;
mod outcome;
mod step;

pub use judge::{Judge, judged};
pub use key::AppKey;
pub use outcome::{Failed, Failure, Outcome, StepResults, Unjudged, walk};
pub use step::{STEPS, Step, StepInfo, runbook_url};
