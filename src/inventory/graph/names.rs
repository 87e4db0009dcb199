//! The `app` label of Graph's apps. Display names are not unique in Entra ID, and anyone who
//! may name an app chooses them, so the label is made unique by construction: two apps never
//! share one (their series and backend answers would become one), and which app gets which
//! label depends on the names and ids alone, never on the order Graph lists them in.

use std::collections::{HashMap, HashSet};

/// How many characters of the id a repeated name gets first (`name [abcdefgh]`), as before:
/// enough to tell a GUID's apps apart at a glance.
const SHORT_ID: usize = 8;

/// The label of each app of `apps` (display name, id), in the same order. A display name
/// that no other app has is kept as it is. Apps that share one are ordered by id: the first
/// keeps the name, each other gets the start of its id appended (`name [abcdefgh]`), longer
/// when that is taken too, then its whole id, then a number: a label already given is never
/// given again.
pub fn labels(apps: &[(&str, &str)]) -> Vec<String> {
    let mut sharing: HashMap<&str, usize> = HashMap::new();
    for (name, _) in apps {
        *sharing.entry(name).or_default() += 1;
    }
    // Names only one app has are reserved first: a suffixed label can never take one.
    let mut taken: HashSet<String> = apps
        .iter()
        .filter(|(name, _)| sharing[name] == 1)
        .map(|(name, _)| (*name).to_string())
        .collect();
    let mut order: Vec<usize> = (0..apps.len()).collect();
    order.sort_by_key(|&i| (apps[i].0, apps[i].1, i));
    let mut labels = vec![String::new(); apps.len()];
    for i in order {
        let (name, id) = apps[i];
        labels[i] = if sharing[name] == 1 {
            name.to_string()
        } else {
            claim(&mut taken, name, id)
        };
    }
    labels
}

/// The first free label for `name` shared with other apps: the name itself, then with more and
/// more of `id`, then numbered.
fn claim(taken: &mut HashSet<String>, name: &str, id: &str) -> String {
    let lengths =
        std::iter::once(0).chain((SHORT_ID..=id.chars().count().max(SHORT_ID)).step_by(4));
    let candidates = lengths
        .map(|length| match length {
            0 => name.to_string(),
            _ => format!("{name} [{}]", id.chars().take(length).collect::<String>()),
        })
        .chain(std::iter::once(format!("{name} [{id}]")));
    for candidate in candidates {
        if taken.insert(candidate.clone()) {
            return candidate;
        }
    }
    // Only apps with the same name and id get here; `taken` is finite, so this ends.
    let mut n = 2;
    loop {
        let candidate = format!("{name} [{id}] #{n}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_repeated_name_by_id_keeps_it_and_the_others_get_their_id() {
        assert_eq!(
            labels(&[("Intranet", "bbbbbbbb-2222"), ("Intranet", "aaaaaaaa-1111")]),
            ["Intranet [bbbbbbbb]", "Intranet"]
        );
    }

    #[test]
    fn a_taken_suffix_grows_to_the_whole_id_then_a_number() {
        let got = labels(&[
            ("x [abcdefgh]", "00000000"),
            ("x", "0"),
            ("x", "abcdefgh-1"),
            ("x", "abcdefgh-1"),
        ]);
        assert_eq!(
            got,
            ["x [abcdefgh]", "x", "x [abcdefgh-1]", "x [abcdefgh-1] #2"]
        );
    }
}
