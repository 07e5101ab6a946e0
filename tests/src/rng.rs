//! xorshift64*: random operations that are the same on every machine for a seed.

/// A seeded generator for the churn tests.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One of `items`, if there are any.
    pub fn pick<'a, T>(&mut self, items: impl ExactSizeIterator<Item = &'a T>) -> Option<&'a T>
    where
        T: 'a,
    {
        let mut items = items;
        let len = items.len();
        if len == 0 {
            return None;
        }
        items.nth(self.below(len))
    }
}
