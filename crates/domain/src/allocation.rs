//! Where a taking's units come from (README "Locations"): the one rule every deduct, batch
//! line and hold follows, so what a product view shows as available is exactly what a taking
//! with the same parameters can take.
//!
//! A line's candidates are the locations it names (`At`, `Among`, in that order), or the
//! active locations with a level for its product, in the order of the request's `Strategy`.
//! `Split::Allowed` takes a line from its candidates in order, each as far as its available
//! goes; `Split::Never` takes it whole from the first candidate that covers it. Lines are
//! served in request order, each from what earlier lines left.

use std::collections::HashMap;

/// The order of a line's candidates when it names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// By `priority`, then id.
    #[default]
    Priority,
    /// By what is available, most first, then `priority`, then id.
    MostAvailable,
}

/// Whether one line may take from several locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    #[default]
    Allowed,
    Never,
}

/// Where a line may take from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// The active locations with a level for the product, in the strategy's order.
    #[default]
    Any,
    /// Only this location.
    At(String),
    /// Only these, in this order.
    Among(Vec<String>),
}

/// One level of a product as a taking finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub location_id: String,
    pub priority: i64,
    /// Whether its location is active: an inactive one is never chosen.
    pub active: bool,
    /// What can be taken there: its stock less its active holds, never below 0.
    pub available: i64,
}

/// A line to serve: a product, how many, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub product_id: i64,
    pub quantity: i64,
    pub source: Source,
}

/// Units of a line taken at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub location_id: String,
    pub quantity: i64,
}

/// A line that cannot be served: what it asked, the most it could take under its rules, and
/// its candidates with what each had left, in the order they were tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    pub product_id: i64,
    pub requested: i64,
    pub available: i64,
    pub by_location: Vec<(String, i64)>,
}

/// Every line's allocations, in the order taken, or every product whose lines cannot all be
/// served (`Short`, one per product in the order first named: `requested` is what all its
/// lines ask, `available` the most they could take under their rules, `by_location` the
/// candidates of its first short line with what each had before the request). `levels` are
/// each product's levels; a product without levels has nothing anywhere.
pub fn allocate(
    wants: &[Want],
    levels: &HashMap<i64, Vec<Level>>,
    strategy: Strategy,
    split: Split,
) -> Result<Vec<Vec<Allocation>>, Vec<Short>> {
    // What each level has left, as earlier lines take from it.
    let mut left: HashMap<(i64, String), i64> = HashMap::new();
    for (product_id, product_levels) in levels {
        for level in product_levels.iter().filter(|level| level.active) {
            left.insert((*product_id, level.location_id.clone()), level.available);
        }
    }
    let before = left.clone();
    let none = Vec::new();
    let mut served: Vec<Result<Vec<Allocation>, Short>> = Vec::with_capacity(wants.len());
    for want in wants {
        let product_levels = levels.get(&want.product_id).unwrap_or(&none);
        let candidates: Vec<(String, i64)> = candidates(want, product_levels, &left, strategy);
        match take(want.quantity, &candidates, split) {
            Some(allocations) => {
                for allocation in &allocations {
                    let key = (want.product_id, allocation.location_id.clone());
                    if let Some(units) = left.get_mut(&key) {
                        *units -= allocation.quantity;
                    }
                }
                served.push(Ok(allocations));
            }
            None => {
                let units = candidates.iter().map(|(_, units)| *units);
                let available = match split {
                    Split::Allowed => units.sum(),
                    Split::Never => units.max().unwrap_or_default(),
                };
                served.push(Err(Short {
                    product_id: want.product_id,
                    requested: want.quantity,
                    available,
                    by_location: candidates,
                }));
            }
        }
    }
    if served.iter().all(Result::is_ok) {
        return Ok(served.into_iter().flatten().collect());
    }
    // One short line per product, its lines added up.
    let mut short: Vec<Short> = Vec::new();
    for (want, outcome) in wants.iter().zip(&served) {
        let taken = match outcome {
            Ok(_) => want.quantity,
            Err(line) => line.available,
        };
        match short.iter_mut().find(|s| s.product_id == want.product_id) {
            Some(product) => {
                product.requested += want.quantity;
                product.available += taken;
                if product.by_location.is_empty() {
                    if let Err(line) = outcome {
                        product.by_location = as_before(line, &before);
                    }
                }
            }
            None => short.push(Short {
                product_id: want.product_id,
                requested: want.quantity,
                available: taken,
                by_location: match outcome {
                    Ok(_) => Vec::new(),
                    Err(line) => as_before(line, &before),
                },
            }),
        }
    }
    let products_short: Vec<i64> = served
        .iter()
        .filter_map(|outcome| outcome.as_ref().err().map(|line| line.product_id))
        .collect();
    short.retain(|product| products_short.contains(&product.product_id));
    Err(short)
}

/// A short line's candidates with what each had before the request's lines took any.
fn as_before(line: &Short, before: &HashMap<(i64, String), i64>) -> Vec<(String, i64)> {
    line.by_location
        .iter()
        .map(|(location, _)| {
            let had = before
                .get(&(line.product_id, location.clone()))
                .copied()
                .unwrap_or(0);
            (location.clone(), had)
        })
        .collect()
}

/// A line's candidates, in the order they are tried, with what each has left (a location
/// without an active level for the product has 0).
fn candidates(
    want: &Want,
    levels: &[Level],
    left: &HashMap<(i64, String), i64>,
    strategy: Strategy,
) -> Vec<(String, i64)> {
    let left_at = |location: &str| {
        left.get(&(want.product_id, location.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    match &want.source {
        Source::At(location) => vec![(location.clone(), left_at(location))],
        Source::Among(locations) => locations
            .iter()
            .map(|location| (location.clone(), left_at(location)))
            .collect(),
        Source::Any => {
            let mut active: Vec<(&Level, i64)> = levels
                .iter()
                .filter(|level| level.active)
                .map(|level| (level, left_at(&level.location_id)))
                .collect();
            active.sort_by(|(a, a_left), (b, b_left)| {
                let by_priority = a
                    .priority
                    .cmp(&b.priority)
                    .then_with(|| a.location_id.cmp(&b.location_id));
                match strategy {
                    Strategy::Priority => by_priority,
                    Strategy::MostAvailable => b_left.cmp(a_left).then(by_priority),
                }
            });
            active
                .into_iter()
                .map(|(level, units)| (level.location_id.clone(), units))
                .collect()
        }
    }
}

/// `quantity` from `candidates` in order, or `None` if they cannot cover it.
fn take(quantity: i64, candidates: &[(String, i64)], split: Split) -> Option<Vec<Allocation>> {
    match split {
        Split::Never => {
            candidates
                .iter()
                .find(|(_, units)| *units >= quantity)
                .map(|(location, _)| {
                    vec![Allocation {
                        location_id: location.clone(),
                        quantity,
                    }]
                })
        }
        Split::Allowed => {
            let mut wanted = quantity;
            let mut allocations = Vec::new();
            for (location, units) in candidates {
                if wanted == 0 {
                    break;
                }
                let here = wanted.min(*units);
                if here > 0 {
                    allocations.push(Allocation {
                        location_id: location.clone(),
                        quantity: here,
                    });
                    wanted -= here;
                }
            }
            (wanted == 0).then_some(allocations)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(location: &str, priority: i64, available: i64) -> Level {
        Level {
            location_id: location.into(),
            priority,
            active: true,
            available,
        }
    }

    fn want(product_id: i64, quantity: i64, source: Source) -> Want {
        Want {
            product_id,
            quantity,
            source,
        }
    }

    fn taken(allocations: &[Allocation]) -> Vec<(&str, i64)> {
        allocations
            .iter()
            .map(|a| (a.location_id.as_str(), a.quantity))
            .collect()
    }

    fn two_locations() -> HashMap<i64, Vec<Level>> {
        HashMap::from([(7, vec![level("hamburg", 20, 10), level("berlin", 10, 3)])])
    }

    #[test]
    fn by_priority_a_line_takes_from_the_first_location_then_the_next() {
        let levels = two_locations();
        let served = allocate(
            &[want(7, 5, Source::Any)],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap();
        assert_eq!(taken(&served[0]), [("berlin", 3), ("hamburg", 2)]);
    }

    #[test]
    fn most_available_starts_where_the_most_is_left_after_earlier_lines() {
        let levels = two_locations();
        let served = allocate(
            &[want(7, 9, Source::Any), want(7, 3, Source::Any)],
            &levels,
            Strategy::MostAvailable,
            Split::Allowed,
        )
        .unwrap();
        assert_eq!(taken(&served[0]), [("hamburg", 9)]);
        // Hamburg has 1 left, Berlin 3: Berlin first now.
        assert_eq!(taken(&served[1]), [("berlin", 3)]);
    }

    #[test]
    fn never_split_takes_a_line_whole_from_the_first_that_covers_it() {
        let levels = two_locations();
        let served = allocate(
            &[want(7, 4, Source::Any)],
            &levels,
            Strategy::Priority,
            Split::Never,
        )
        .unwrap();
        assert_eq!(taken(&served[0]), [("hamburg", 4)]);
        let short = allocate(
            &[want(7, 11, Source::Any)],
            &levels,
            Strategy::Priority,
            Split::Never,
        )
        .unwrap_err();
        assert_eq!(short[0].available, 10);
        assert_eq!(
            short[0].by_location,
            [("berlin".to_owned(), 3), ("hamburg".to_owned(), 10)]
        );
    }

    #[test]
    fn the_sum_available_is_exactly_what_a_split_line_can_take() {
        let levels = two_locations();
        let fits = [want(7, 13, Source::Any)];
        assert!(allocate(&fits, &levels, Strategy::Priority, Split::Allowed).is_ok());
        let short = allocate(
            &[want(7, 14, Source::Any)],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap_err();
        assert_eq!((short[0].requested, short[0].available), (14, 13));
    }

    #[test]
    fn named_locations_are_the_only_candidates_in_the_order_named() {
        let levels = two_locations();
        let among = Source::Among(vec!["hamburg".into(), "berlin".into(), "paris".into()]);
        let served = allocate(
            &[want(7, 12, among)],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap();
        assert_eq!(taken(&served[0]), [("hamburg", 10), ("berlin", 2)]);
        // A location without a level has 0: no fallback elsewhere.
        let short = allocate(
            &[want(7, 1, Source::At("paris".into()))],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap_err();
        assert_eq!(short[0].by_location, [("paris".to_owned(), 0)]);
    }

    #[test]
    fn lines_naming_one_product_are_short_together() {
        let levels = HashMap::from([(7, vec![level("default", 100, 5)])]);
        let short = allocate(
            &[want(7, 2, Source::Any), want(7, 4, Source::Any)],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap_err();
        assert_eq!(
            short,
            [Short {
                product_id: 7,
                requested: 6,
                available: 5,
                by_location: vec![("default".to_owned(), 5)],
            }]
        );
    }

    #[test]
    fn an_inactive_location_is_never_chosen_and_every_short_line_is_listed() {
        let mut levels = two_locations();
        levels.get_mut(&7).unwrap()[0].active = false;
        levels.insert(8, vec![level("berlin", 10, 1)]);
        let short = allocate(
            &[
                want(7, 4, Source::Any),
                want(8, 1, Source::Any),
                want(9, 1, Source::Any),
            ],
            &levels,
            Strategy::Priority,
            Split::Allowed,
        )
        .unwrap_err();
        let lines: Vec<(i64, i64)> = short.iter().map(|s| (s.product_id, s.available)).collect();
        assert_eq!(lines, [(7, 3), (9, 0)]);
        assert_eq!(short[0].by_location, [("berlin".to_owned(), 3)]);
    }
}
