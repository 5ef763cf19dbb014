//! Indexes over the pool's keys, so choosing a key costs O(log n) in the pool's size: an
//! ordered set of ready keys by rank (round robin, least used, quota failover) or a Fenwick
//! tree of their weights (random, weighted), and ordered sets of the times at which a key's
//! standing changes (a rest ends, a rate ceiling refills, a provider's window resets).
//!
//! The pool tells the index where each key stands after every change ([`KeyIndex::place`]);
//! the index never looks at keys itself.

use std::collections::BTreeSet;

use super::host::Rng;

/// Sort key of a ready key under an ordered strategy: lowest goes first, ties by slot.
pub type Rank = [u64; 4];

/// Where one key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Place {
    /// Invalid, disabled or removed: in no set.
    #[default]
    Out,
    /// Can serve now. `weight` is used by the sampled strategies, `rank` by the ordered ones.
    Ready { rank: Rank, weight: u64 },
    /// Resting (cooling down or known empty) until then.
    Resting(u64),
    /// Held back only by its own rate ceiling until then.
    Shaped(u64),
}

/// A placement and, for a ready key, the time its rank changes by itself (a provider window
/// resets); the index asks for the key again then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    pub place: Place,
    pub revisit_at: Option<u64>,
}

#[derive(Debug)]
enum ReadySet {
    Ranked(BTreeSet<(Rank, usize)>),
    Sampled(Fenwick),
}

#[derive(Debug)]
pub struct KeyIndex {
    placements: Vec<Placement>,
    ready: ReadySet,
    resting: BTreeSet<(u64, usize)>,
    shaped: BTreeSet<(u64, usize)>,
    revisits: BTreeSet<(u64, usize)>,
}

impl KeyIndex {
    /// `sampled`: ready keys are drawn at random in proportion to their weight rather than
    /// taken in rank order.
    pub fn new(sampled: bool) -> Self {
        let ready = if sampled { ReadySet::Sampled(Fenwick::default()) } else { ReadySet::Ranked(BTreeSet::new()) };
        Self { placements: Vec::new(), ready, resting: BTreeSet::new(), shaped: BTreeSet::new(), revisits: BTreeSet::new() }
    }

    /// Moves `slot` to its new placement (slots are numbered from 0 without gaps).
    pub fn place(&mut self, slot: usize, new: Placement) {
        while self.placements.len() <= slot {
            self.placements.push(Placement::default());
            if let ReadySet::Sampled(tree) = &mut self.ready {
                tree.push();
            }
        }
        let old = std::mem::replace(&mut self.placements[slot], new);
        if old == new {
            return;
        }
        self.unlink(slot, old);
        self.link(slot, new);
    }

    fn unlink(&mut self, slot: usize, p: Placement) {
        match p.place {
            Place::Out => {}
            Place::Ready { rank, .. } => match &mut self.ready {
                ReadySet::Ranked(set) => {
                    set.remove(&(rank, slot));
                }
                ReadySet::Sampled(tree) => tree.set(slot, 0),
            },
            Place::Resting(t) => {
                self.resting.remove(&(t, slot));
            }
            Place::Shaped(t) => {
                self.shaped.remove(&(t, slot));
            }
        }
        if let Some(t) = p.revisit_at {
            self.revisits.remove(&(t, slot));
        }
    }

    fn link(&mut self, slot: usize, p: Placement) {
        match p.place {
            Place::Out => {}
            Place::Ready { rank, weight } => match &mut self.ready {
                ReadySet::Ranked(set) => {
                    set.insert((rank, slot));
                }
                ReadySet::Sampled(tree) => tree.set(slot, weight),
            },
            Place::Resting(t) => {
                self.resting.insert((t, slot));
            }
            Place::Shaped(t) => {
                self.shaped.insert((t, slot));
            }
        }
        if let Some(t) = p.revisit_at {
            self.revisits.insert((t, slot));
        }
    }

    /// Slots whose standing may have changed by `now` (a rest, ceiling or window ended),
    /// earliest first. The caller places each again.
    pub fn due(&self, now: u64) -> Vec<usize> {
        let upto = (now, usize::MAX);
        let mut due: Vec<(u64, usize)> = Vec::new();
        for set in [&self.resting, &self.shaped, &self.revisits] {
            due.extend(set.range(..=upto));
        }
        due.sort_unstable();
        due.into_iter().map(|(_, slot)| slot).collect()
    }

    /// Whether anything is due by `now` (cheap check before [`KeyIndex::due`]).
    pub fn any_due(&self, now: u64) -> bool {
        [&self.resting, &self.shaped, &self.revisits].iter().any(|set| set.first().is_some_and(|(t, _)| *t <= now))
    }

    /// The ready key to use, passing over `tried` slots while an untried one is ready.
    pub fn pick(&mut self, tried: &[usize], rng: &impl Rng) -> Option<usize> {
        match &mut self.ready {
            ReadySet::Ranked(set) => {
                // `tried` holds a handful of slots at most, so this walks a few entries.
                let first_untried = set.iter().map(|(_, slot)| *slot).find(|slot| !tried.contains(slot));
                first_untried.or_else(|| set.first().map(|(_, slot)| *slot))
            }
            ReadySet::Sampled(tree) => {
                let placements = &self.placements;
                let restore = |tree: &mut Fenwick| {
                    for slot in tried {
                        if let Some(Placement { place: Place::Ready { weight, .. }, .. }) = placements.get(*slot) {
                            tree.set(*slot, *weight);
                        }
                    }
                };
                for slot in tried {
                    tree.set(*slot, 0);
                }
                if tree.total() == 0 {
                    // Every ready key was tried: draw among all of them again.
                    restore(tree);
                }
                let total = tree.total();
                let chosen = (total > 0).then(|| tree.find(rng.below(total)));
                restore(tree);
                chosen
            }
        }
    }

    /// When the first resting key comes back.
    pub fn first_rest_end(&self) -> Option<u64> {
        self.resting.first().map(|(t, _)| *t)
    }

    /// When the first key held back by its rate ceiling may go again.
    pub fn first_shaped_end(&self) -> Option<u64> {
        self.shaped.first().map(|(t, _)| *t)
    }
}

/// A Fenwick (binary indexed) tree over per-slot weights: point updates, prefix sums and
/// "which slot holds ticket t" in O(log n).
#[derive(Debug, Default)]
struct Fenwick {
    values: Vec<u64>,
    /// 1-based: `tree[i]` sums `values` over `(i - lowbit(i), i]`; `tree[0]` is unused.
    tree: Vec<u64>,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    /// Appends a slot of weight 0.
    fn push(&mut self) {
        if self.tree.is_empty() {
            self.tree.push(0);
        }
        let i = self.values.len() + 1;
        // The new node covers (i - lowbit(i), i]; all but its own value already exist.
        let covered = self.prefix(i - 1) - self.prefix(i - lowbit(i));
        self.values.push(0);
        self.tree.push(covered);
    }

    fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= lowbit(i);
        }
        sum
    }

    fn total(&self) -> u64 {
        self.prefix(self.values.len())
    }

    fn set(&mut self, slot: usize, value: u64) {
        let Some(old) = self.values.get(slot).copied() else { return };
        if old == value {
            return;
        }
        self.values[slot] = value;
        let mut i = slot + 1;
        while i < self.tree.len() {
            // Wrapping add of the (possibly negative) difference keeps every partial sum exact.
            self.tree[i] = self.tree[i].wrapping_add(value.wrapping_sub(old));
            i += lowbit(i);
        }
    }

    /// The slot whose share of the running total holds `ticket` (< total): the first slot
    /// whose prefix sum exceeds it, as a linear walk over the weights would find.
    fn find(&self, mut ticket: u64) -> usize {
        let n = self.values.len();
        let mut pos = 0;
        let mut step = if n == 0 { 0 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= ticket {
                pos = next;
                ticket -= self.tree[next];
            }
            step >>= 1;
        }
        pos.min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear_find(values: &[u64], mut ticket: u64) -> usize {
        for (i, v) in values.iter().enumerate() {
            if ticket < *v {
                return i;
            }
            ticket -= v;
        }
        unreachable!("ticket beyond total")
    }

    #[test]
    fn fenwick_matches_a_linear_walk_through_pushes_and_updates() {
        let mut f = Fenwick::default();
        let mut values = Vec::new();
        for i in 0..37u64 {
            f.push();
            values.push(0);
            let v = (i * 7919) % 5; // some zeros among them
            f.set(i as usize, v);
            values[i as usize] = v;
            if i % 3 == 0 && i > 0 {
                f.set((i / 2) as usize, 0);
                values[(i / 2) as usize] = 0;
            }
            assert_eq!(f.total(), values.iter().sum::<u64>());
            for ticket in 0..f.total() {
                assert_eq!(f.find(ticket), linear_find(&values, ticket), "ticket {ticket} after {i} pushes");
            }
        }
    }

    #[test]
    fn due_slots_come_earliest_first_and_leave_later_ones() {
        let mut index = KeyIndex::new(false);
        index.place(0, Placement { place: Place::Resting(30), revisit_at: None });
        index.place(1, Placement { place: Place::Shaped(10), revisit_at: None });
        index.place(2, Placement { place: Place::Ready { rank: [0; 4], weight: 1 }, revisit_at: Some(20) });
        index.place(3, Placement { place: Place::Resting(40), revisit_at: None });
        assert!(!index.any_due(9));
        assert_eq!(index.due(30), vec![1, 2, 0]);
        assert_eq!(index.first_rest_end(), Some(30));
        index.place(0, Placement::default());
        assert_eq!(index.first_rest_end(), Some(40));
    }

    #[test]
    fn ranked_pick_passes_over_tried_slots_until_all_are_tried() {
        let mut index = KeyIndex::new(false);
        for (slot, r) in [5u64, 1, 3].into_iter().enumerate() {
            index.place(slot, Placement { place: Place::Ready { rank: [r, 0, 0, 0], weight: 1 }, revisit_at: None });
        }
        let rng = crate::core::SeededRng::new(|| 1);
        assert_eq!(index.pick(&[], &rng), Some(1));
        assert_eq!(index.pick(&[1], &rng), Some(2));
        assert_eq!(index.pick(&[1, 2, 0], &rng), Some(1));
    }
}
