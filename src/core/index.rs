//! Indexes over the pool's keys, so choosing a key costs O(log n) in the pool's size: an
//! ordered set of ready keys by rank (round robin, least used, quota failover) or a Fenwick
//! tree of their weights (random, weighted), and heaps of the times at which a key's standing
//! changes (a rest ends, a rate ceiling refills, a provider's window resets).
//!
//! Ready keys sit in a `BTreeSet`: a used key moves from the front to the back, which a B-tree
//! does at its two warm ends where a heap walks root to leaf (measured: about half the cost
//! at 10,000 keys, in wasm and natively). The timers, which change far less often, use heaps
//! with a position per slot, a fraction of the wasm of a second `BTreeSet`.
//!
//! The pool tells the index where each key stands after every change ([`KeyIndex::place`]);
//! the index never looks at keys itself.

use std::collections::BTreeSet;

use super::host::Rng;

/// Sort key of a ready key under an ordered strategy: lowest goes first, ties by slot.
pub(super) type Rank = [u64; 4];

/// Where one key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Place {
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
pub(super) struct Placement {
    pub place: Place,
    pub revisit_at: Option<u64>,
}

#[derive(Debug)]
enum ReadySet {
    Ranked(BTreeSet<(Rank, usize)>),
    Sampled(Fenwick),
}

#[derive(Debug)]
pub(super) struct KeyIndex {
    placements: Vec<Placement>,
    ready: ReadySet,
    resting: SlotHeap<u64>,
    shaped: SlotHeap<u64>,
    revisits: SlotHeap<u64>,
}

impl KeyIndex {
    /// `sampled`: ready keys are drawn at random in proportion to their weight rather than
    /// taken in rank order.
    pub(super) fn new(sampled: bool) -> Self {
        let ready = if sampled { ReadySet::Sampled(Fenwick::default()) } else { ReadySet::Ranked(BTreeSet::new()) };
        Self { placements: Vec::new(), ready, resting: SlotHeap::default(), shaped: SlotHeap::default(), revisits: SlotHeap::default() }
    }

    /// Moves `slot` to its new placement (slots are numbered from 0 without gaps).
    pub(super) fn place(&mut self, slot: usize, new: Placement) {
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
        // Each structure holds the slot exactly when the new placement says so.
        let (ready, resting, shaped) = match new.place {
            Place::Out => (None, None, None),
            Place::Ready { rank, weight } => (Some((rank, weight)), None, None),
            Place::Resting(t) => (None, Some(t), None),
            Place::Shaped(t) => (None, None, Some(t)),
        };
        match &mut self.ready {
            ReadySet::Ranked(set) => {
                if let Place::Ready { rank, .. } = old.place {
                    set.remove(&(rank, slot));
                }
                if let Some((rank, _)) = ready {
                    set.insert((rank, slot));
                }
            }
            ReadySet::Sampled(tree) => tree.set(slot, ready.map_or(0, |(_, weight)| weight)),
        }
        self.resting.set(slot, resting);
        self.shaped.set(slot, shaped);
        self.revisits.set(slot, new.revisit_at);
    }

    /// Slots whose standing may have changed by `now` (a rest, ceiling or window ended),
    /// earliest first. The caller places each again.
    pub(super) fn due(&self, now: u64) -> Vec<usize> {
        let mut due: Vec<(u64, usize)> = Vec::new();
        for heap in [&self.resting, &self.shaped, &self.revisits] {
            heap.at_most(&now, &mut due);
        }
        due.sort_unstable();
        due.into_iter().map(|(_, slot)| slot).collect()
    }

    /// Whether anything is due by `now` (cheap check before [`KeyIndex::due`]).
    pub(super) fn any_due(&self, now: u64) -> bool {
        [&self.resting, &self.shaped, &self.revisits].iter().any(|heap| heap.first().is_some_and(|(t, _)| t <= now))
    }

    /// The ready key to use, passing over `tried` slots while an untried one is ready.
    pub(super) fn pick(&mut self, tried: &[usize], rng: &impl Rng) -> Option<usize> {
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
    pub(super) fn first_rest_end(&self) -> Option<u64> {
        self.resting.first().map(|(t, _)| t)
    }

    /// When the first key held back by its rate ceiling may go again.
    pub(super) fn first_shaped_end(&self) -> Option<u64> {
        self.shaped.first().map(|(t, _)| t)
    }
}

/// A min-heap of slots ordered by (key, slot), with each slot's position in the heap
/// kept so a slot can be moved or taken out in O(log n).
#[derive(Debug)]
struct SlotHeap<K> {
    heap: Vec<(K, usize)>,
    /// Position of each slot in `heap`, `NOT_IN` if absent.
    position: Vec<usize>,
}

const NOT_IN: usize = usize::MAX;
const ARITY: usize = 4;

impl<K> Default for SlotHeap<K> {
    fn default() -> Self {
        Self { heap: Vec::new(), position: Vec::new() }
    }
}

impl<K: Ord + Copy> SlotHeap<K> {
    fn first(&self) -> Option<(K, usize)> {
        self.heap.first().copied()
    }

    /// Files `slot` under `key`, or takes it out for `None`.
    fn set(&mut self, slot: usize, key: Option<K>) {
        let at = self.position.get(slot).copied().unwrap_or(NOT_IN);
        match (key, at) {
            (None, NOT_IN) => {}
            (None, _) => self.remove(slot),
            (Some(key), NOT_IN) => {
                if self.position.len() <= slot {
                    self.position.resize(slot + 1, NOT_IN);
                }
                self.heap.push((key, slot));
                self.position[slot] = self.heap.len() - 1;
                self.sift_up(self.heap.len() - 1);
            }
            (Some(key), at) => {
                self.heap[at].0 = key;
                self.sift_down(at);
                self.sift_up(at);
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        let at = self.position[slot];
        self.position[slot] = NOT_IN;
        let last = self.heap.len() - 1;
        let moved = self.heap[last];
        self.heap.pop();
        if at < last {
            self.put(at, moved);
            self.sift_down(at);
            self.sift_up(at);
        }
    }

    /// Appends every entry with a key at most `bound` (pruning subtrees above it).
    fn at_most(&self, bound: &K, out: &mut Vec<(K, usize)>) {
        let mut stack = vec![0];
        while let Some(at) = stack.pop() {
            match self.heap.get(at) {
                Some(entry) if entry.0 <= *bound => {
                    out.push(*entry);
                    stack.extend(ARITY * at + 1..=ARITY * at + ARITY);
                }
                _ => {}
            }
        }
    }

    // Four children per node: half the depth of a binary heap, and siblings share cache lines.
    // Both sifts move a hole rather than swapping, writing each position once.

    fn sift_up(&mut self, mut at: usize) {
        let entry = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / ARITY;
            if self.heap[parent] <= entry {
                break;
            }
            self.put(at, self.heap[parent]);
            at = parent;
        }
        self.put(at, entry);
    }

    fn sift_down(&mut self, mut at: usize) {
        let entry = self.heap[at];
        loop {
            let first = ARITY * at + 1;
            let Some(child) = (first..(first + ARITY).min(self.heap.len())).min_by_key(|c| self.heap[*c]) else { break };
            if entry <= self.heap[child] {
                break;
            }
            self.put(at, self.heap[child]);
            at = child;
        }
        self.put(at, entry);
    }

    fn put(&mut self, at: usize, entry: (K, usize)) {
        self.heap[at] = entry;
        self.position[entry.1] = at;
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
