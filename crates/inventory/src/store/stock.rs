//! Taking stock: the one path of every route that takes units (a deduct, a batch deduct, a
//! hold, a hold's commit), and restock and release, which give them back.
//!
//! A taking runs in the caller's write transaction (`BEGIN IMMEDIATE`), so nothing else
//! writes between its read and its writes, in steps:
//!
//! 1. `levels::read`: each product's levels, with what active holds have of each, and its
//!    version, in one statement. A product not found refuses the taking.
//! 2. `allocate`: where each line's units come from, by the one rule of
//!    `domain::allocation` (a hold's commit takes exactly its hold's allocations). A line
//!    that cannot be served refuses the taking, every such line listed, before anything is
//!    written.
//! 3. A hold's allocations written (`held::hold`), or a commit's hold ended (`held::end`).
//! 4. What the taking does to each level and product, computed from what step 1 read (the
//!    levels' stock and reserved after, each product's totals after and next version), written
//!    in one statement with the ledger's rows (`ledger::write`), and every change's events
//!    with the write's own (`told`).

use std::collections::HashMap;

use crate::domain::allocation::{self, Allocation, Short, Source, Split, Strategy, Want};
use crate::domain::stock::DeductLine;
use crate::domain::MAX_STOCK;
use crate::store::db::{StoreError, Tx};
use crate::store::events::{Event, LevelChange, StockCause};
pub use crate::store::held::Line;
use crate::store::held::{self, HeldLine};
use crate::store::ledger::{self, Context, Told};
use crate::store::levels::{self, LevelState, Stocked, DEFAULT_LOCATION};
use crate::store::locations;
use crate::store::products::{Bumped, Totals};

/// How a taking takes its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How<'a> {
    /// Sold: the units leave the stock.
    Deduct,
    /// Held for a checkout until `until` (Unix ms): the units leave `available` only.
    Hold { reservation: &'a str, until: i64 },
    /// A hold's units sold, exactly where they were held: they leave the stock on hand,
    /// which must cover them, and the hold's allocations (`held`) stop holding. A line of 0
    /// takes nothing: the hold's units of that product are given back (a partial commit
    /// that did not name it).
    Commit {
        reservation: &'a str,
        held: &'a [HeldLine],
    },
}

/// A taking: its lines as the request named them (a product may be named by several, each
/// served in turn), how, where from (`strategy`, `split`; a commit takes from where its
/// hold is), its ledger context, and the events of the write that are not about quantities
/// (a hold's `reservation.*`), told with the lines'.
pub struct Taking<'a> {
    pub lines: &'a [Want],
    pub how: How<'a>,
    pub strategy: Strategy,
    pub split: Split,
    pub context: Context<'a>,
    pub told: Vec<Event>,
}

/// One product's quantities after a taking, how many units it took, and where from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub product_id: i64,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub quantity: i64,
    pub allocations: Vec<Allocation>,
}

/// Why a taking took nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// These products do not exist.
    NotFound(Vec<i64>),
    /// Lines (by index) name a location that does not exist or is inactive.
    Locations(Vec<(usize, String)>),
    /// Every line that wants more than there is for it.
    Short(Vec<Short>),
}

/// Takes every line or none (see the module's documentation): the lines as they are after.
pub fn take(tx: &Tx<'_>, taking: Taking<'_>) -> Result<Result<Vec<Taken>, Refusal>, StoreError> {
    take_then(tx, taking, |_| Vec::new())
}

/// `take`, with events of the write that depend on what was taken (a hold's, which names
/// where its units are), told after the taking's own.
pub fn take_then(
    tx: &Tx<'_>,
    mut taking: Taking<'_>,
    then: impl FnOnce(&[Taken]) -> Vec<Event>,
) -> Result<Result<Vec<Taken>, Refusal>, StoreError> {
    let named = named_locations(taking.lines);
    if !named.is_empty() {
        let usable = locations::active_of(tx, &named)?;
        let refused: Vec<(usize, String)> = taking
            .lines
            .iter()
            .enumerate()
            .flat_map(|(index, want)| {
                let names: Vec<&String> = match &want.source {
                    Source::Any => Vec::new(),
                    Source::At(at) => vec![at],
                    Source::Among(among) => among.iter().collect(),
                };
                names
                    .into_iter()
                    .filter(|name| !usable.contains(*name))
                    .map(move |name| (index, name.clone()))
            })
            .collect();
        if !refused.is_empty() {
            return Ok(Err(Refusal::Locations(refused)));
        }
    }
    let mut ids: Vec<i64> = Vec::with_capacity(taking.lines.len());
    for want in taking.lines {
        if !ids.contains(&want.product_id) {
            ids.push(want.product_id);
        }
    }
    let found = levels::read(tx, &ids)?;
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() {
        return Ok(Err(Refusal::NotFound(missing)));
    }
    let served = match allocate(&taking, &found) {
        Ok(allocations) => allocations,
        Err(short) => return Ok(Err(Refusal::Short(short))),
    };
    // One line per product, in the order first named, its allocations merged per location.
    let (lines, allocations) = merge(taking.lines, served);
    // What each level gains or loses, in stock and in reserved.
    let mut level_deltas: HashMap<(i64, &str), (i64, i64)> = HashMap::new();
    for (line, taken) in lines.iter().zip(&allocations) {
        for allocation in taken {
            let key = (line.product_id, allocation.location_id.as_str());
            match taking.how {
                How::Deduct | How::Commit { .. } => {
                    level_deltas.entry(key).or_default().0 -= allocation.quantity
                }
                How::Hold { .. } => level_deltas.entry(key).or_default().1 += allocation.quantity,
            }
        }
    }
    // Each line with where it was taken: what a hold holds, or what a commit took.
    let taken_lines = || -> Vec<HeldLine> {
        lines
            .iter()
            .zip(&allocations)
            .map(|(line, taken)| HeldLine {
                product_id: line.product_id,
                quantity: line.quantity,
                allocations: taken.clone(),
            })
            .collect()
    };
    match taking.how {
        How::Deduct => {}
        How::Hold { reservation, until } => {
            held::hold(tx, reservation, &taken_lines(), until)?;
        }
        How::Commit { reservation, held } => {
            held::end(tx, reservation, &taken_lines())?;
            // The hold's units stop counting where they were held, committed or not.
            for line in held {
                for allocation in &line.allocations {
                    let key = (line.product_id, allocation.location_id.as_str());
                    level_deltas.entry(key).or_default().1 -= allocation.quantity;
                }
            }
        }
    }
    let cause = match taking.how {
        How::Deduct => StockCause::Deducted,
        How::Hold { .. } => StockCause::Held,
        How::Commit { .. } => StockCause::Deducted,
    };
    let mut bumped = Vec::with_capacity(lines.len());
    let mut totals = Vec::with_capacity(lines.len());
    for line in &lines {
        let product = found.get(&line.product_id).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "product {} was taken but not read",
                line.product_id
            ))
        })?;
        bumped.push(next_version(line.product_id, product));
        // Each product's totals after, from the levels read and what the taking did to them.
        totals.push((
            Totals::of_active(&product.levels),
            totals_after(&product.levels, line.product_id, &level_deltas),
        ));
    }
    let mut changes = Vec::with_capacity(lines.len());
    let mut taken = Vec::with_capacity(lines.len());
    for (((line, allocations), (before, after)), product) in
        lines.iter().zip(&allocations).zip(&totals).zip(&bumped)
    {
        let levels = levels_of(&found, line.product_id);
        let level_changes = changed_levels(levels, line.product_id, &level_deltas);
        let cause = match (taking.how, line.quantity) {
            (How::Commit { .. }, 0) => StockCause::Released,
            _ => cause,
        };
        changes.push((product.changed(*before, *after, level_changes), cause));
        taken.push(Taken {
            product_id: product.id,
            stock: after.stock,
            reserved: after.reserved,
            available: after.available,
            quantity: line.quantity,
            allocations: allocations.clone(),
        });
    }
    taking.told.extend(then(&taken));
    ledger::write(tx, &changes, &taking.context, Told::After(taking.told))?;
    Ok(Ok(taken))
}

/// Step 2: each line's allocations, or every line that cannot be served.
fn allocate(
    taking: &Taking<'_>,
    found: &HashMap<i64, Stocked>,
) -> Result<Vec<Vec<Allocation>>, Vec<Short>> {
    match taking.how {
        How::Deduct | How::Hold { .. } => {
            let levels = found
                .iter()
                .map(|(id, product)| {
                    let levels = product.levels.iter().map(LevelState::for_allocation);
                    (*id, levels.collect())
                })
                .collect();
            allocation::allocate(taking.lines, &levels, taking.strategy, taking.split)
        }
        How::Commit { held, .. } => commit_allocations(taking.lines, held, found),
    }
}

/// A request's lines, as the taking serves them.
pub fn wants(lines: &[DeductLine]) -> Vec<Want> {
    lines
        .iter()
        .map(|line| Want {
            product_id: line.product_id.get(),
            quantity: line.quantity.get(),
            source: line.source.clone(),
        })
        .collect()
}

/// Lines of products to take from anywhere (a commit's, which takes where its hold is).
pub fn wants_anywhere(lines: &[Line]) -> Vec<Want> {
    lines
        .iter()
        .map(|line| Want {
            product_id: line.product_id,
            quantity: line.quantity,
            source: Source::Any,
        })
        .collect()
}

/// Every location the lines name.
fn named_locations(lines: &[Want]) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for want in lines {
        let names = match &want.source {
            Source::Any => &[][..],
            Source::At(at) => std::slice::from_ref(at),
            Source::Among(among) => among.as_slice(),
        };
        for name in names {
            if !named.contains(name) {
                named.push(name.clone());
            }
        }
    }
    named
}

/// The lines served (`served`, one per want) as one line per product, in the order first
/// named, each with its allocations merged per location (in the order first taken).
fn merge(wants: &[Want], served: Vec<Vec<Allocation>>) -> (Vec<Line>, Vec<Vec<Allocation>>) {
    let mut lines: Vec<Line> = Vec::new();
    let mut merged: Vec<Vec<Allocation>> = Vec::new();
    for (want, taken) in wants.iter().zip(served) {
        let index = match lines.iter().position(|l| l.product_id == want.product_id) {
            Some(index) => index,
            None => {
                lines.push(Line {
                    product_id: want.product_id,
                    quantity: 0,
                });
                merged.push(Vec::new());
                lines.len() - 1
            }
        };
        if let (Some(line), Some(into)) = (lines.get_mut(index), merged.get_mut(index)) {
            line.quantity += want.quantity;
            for allocation in taken {
                match into
                    .iter_mut()
                    .find(|a| a.location_id == allocation.location_id)
                {
                    Some(same) => same.quantity += allocation.quantity,
                    None => into.push(allocation),
                }
            }
        }
    }
    (lines, merged)
}

/// A commit's allocations: each line's units taken from its hold's allocations in order;
/// every level must have the stock on hand to cover what is taken there.
fn commit_allocations(
    lines: &[Want],
    held: &[HeldLine],
    found: &HashMap<i64, Stocked>,
) -> Result<Vec<Vec<Allocation>>, Vec<Short>> {
    let mut served = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    for line in lines {
        let stock_at = |location: &str| {
            levels_of(found, line.product_id)
                .iter()
                .find(|l| l.location_id == location)
                .map_or(0, |level| level.stock)
        };
        let mut wanted = line.quantity;
        let mut taken = Vec::new();
        let mut covered = true;
        let mut by_location = Vec::new();
        let mut could = 0;
        for allocation in held
            .iter()
            .filter(|h| h.product_id == line.product_id)
            .flat_map(|h| &h.allocations)
        {
            let here = wanted.min(allocation.quantity);
            let on_hand = stock_at(&allocation.location_id);
            by_location.push((allocation.location_id.clone(), on_hand));
            could += here.min(on_hand);
            if here > 0 {
                covered &= on_hand >= here;
                taken.push(Allocation {
                    location_id: allocation.location_id.clone(),
                    quantity: here,
                });
                wanted -= here;
            }
        }
        if covered && wanted == 0 {
            served.push(taken);
        } else {
            short.push(Short {
                product_id: line.product_id,
                requested: line.quantity,
                available: could,
                by_location,
            });
        }
    }
    if short.is_empty() {
        Ok(served)
    } else {
        Err(short)
    }
}

/// The levels read of `product_id`.
fn levels_of(found: &HashMap<i64, Stocked>, product_id: i64) -> &[LevelState] {
    found
        .get(&product_id)
        .map(|product| product.levels.as_slice())
        .unwrap_or_default()
}

/// What a write of stock makes of a product read in its transaction: its next version.
fn next_version(id: i64, product: &Stocked) -> Bumped {
    Bumped {
        id,
        sku: product.sku.clone(),
        version: product.version + 1,
    }
}

/// A product's totals over its active levels once `deltas` (stock, reserved) are applied.
fn totals_after(
    before: &[LevelState],
    product_id: i64,
    deltas: &HashMap<(i64, &str), (i64, i64)>,
) -> Totals {
    Totals::of(before.iter().filter(|level| level.active).map(|level| {
        let (stock, reserved) = deltas
            .get(&(product_id, level.location_id.as_str()))
            .copied()
            .unwrap_or_default();
        (level.stock + stock, level.reserved + reserved)
    }))
}

/// The levels of `product_id` that `deltas` (stock, reserved) changed, before and after, by
/// location id.
fn changed_levels(
    before: &[LevelState],
    product_id: i64,
    deltas: &HashMap<(i64, &str), (i64, i64)>,
) -> Vec<LevelChange> {
    let mut changed: Vec<LevelChange> = deltas
        .iter()
        .filter(|((id, _), _)| *id == product_id)
        .map(|((_, location), (stock, reserved))| {
            let level = before.iter().find(|l| l.location_id == *location);
            let (was_stock, was_reserved) = level.map_or((0, 0), |l| (l.stock, l.reserved));
            LevelChange {
                location_id: (*location).to_owned(),
                stock: (was_stock, was_stock + stock),
                reserved: (was_reserved, was_reserved + reserved),
            }
        })
        .collect();
    changed.sort_by(|a, b| a.location_id.cmp(&b.location_id));
    changed
}

/// How a restock ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Restock {
    /// Done; the product's totals after it.
    Done(Totals),
    NotFound,
    /// The location does not exist or is inactive.
    Unusable,
    /// The level's stock would pass the maximum; nothing changed. `stock` is what is on
    /// hand there.
    TooMuch {
        stock: i64,
    },
}

/// Gives `quantity` back to a product at `location` (creating the level if absent), up to
/// the maximum stock.
pub fn restock(
    tx: &Tx<'_>,
    product_id: i64,
    quantity: i64,
    location: &str,
    reason: &str,
    context: &Context<'_>,
) -> Result<Restock, StoreError> {
    if location != DEFAULT_LOCATION
        && !locations::active_of(tx, &[location.to_owned()])?.contains(location)
    {
        return Ok(Restock::Unusable);
    }
    let found = levels::read(tx, &[product_id])?;
    let Some(product) = found.get(&product_id) else {
        return Ok(Restock::NotFound);
    };
    let before = &product.levels;
    let level = before.iter().find(|level| level.location_id == location);
    let (stock, reserved) = level.map_or((0, 0), |level| (level.stock, level.reserved));
    if stock > MAX_STOCK - quantity {
        return Ok(Restock::TooMuch { stock });
    }
    if level.is_none() {
        levels::create_empty(tx, product_id, location)?;
    }
    // The location is active (checked above, or `default`): its level counts in the totals.
    let mut after_levels = before.clone();
    match after_levels.iter_mut().find(|l| l.location_id == location) {
        Some(level) => level.stock += quantity,
        None => after_levels.push(LevelState {
            location_id: location.to_owned(),
            priority: 0,
            active: true,
            stock: quantity,
            reserved: 0,
        }),
    }
    let after = Totals::of_active(&after_levels);
    let level = LevelChange {
        location_id: location.to_owned(),
        stock: (stock, stock + quantity),
        reserved: (reserved, reserved),
    };
    let bumped = next_version(product_id, product);
    let change = bumped.changed(Totals::of_active(before), after, vec![level]);
    ledger::write(
        tx,
        &[(change, StockCause::Restocked { reason })],
        context,
        Told::nothing(),
    )?;
    Ok(Restock::Done(after))
}

/// A hold's units given back without a sale: its allocations (`lines`) stop holding, each
/// level's and product's version moves on (so their ETags and events follow), and the change
/// is recorded with the write's own events (`told`).
pub fn give_back(
    tx: &Tx<'_>,
    reservation: &str,
    lines: &[HeldLine],
    told: Vec<Event>,
    context: &Context<'_>,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = lines.iter().map(|line| line.product_id).collect();
    let found = levels::read(tx, &ids)?;
    held::end(tx, reservation, &[])?;
    let mut deltas: HashMap<(i64, &str), (i64, i64)> = HashMap::new();
    for line in lines {
        for allocation in &line.allocations {
            deltas
                .entry((line.product_id, allocation.location_id.as_str()))
                .or_default()
                .1 -= allocation.quantity;
        }
    }
    // In the hold's order, so its products' events are too.
    let products: Vec<(&Stocked, Bumped)> = lines
        .iter()
        .filter_map(|line| {
            let product = found.get(&line.product_id)?;
            Some((product, next_version(line.product_id, product)))
        })
        .collect();
    let changes: Vec<_> = products
        .iter()
        .map(|(product, bumped)| {
            let before = &product.levels;
            let after = totals_after(before, bumped.id, &deltas);
            let level_changes = changed_levels(before, bumped.id, &deltas);
            (
                bumped.changed(Totals::of_active(before), after, level_changes),
                StockCause::Released,
            )
        })
        .collect();
    ledger::write(tx, &changes, context, Told::After(told))
}
