//! Percentiles over latency samples (microseconds), nearest-rank.

use serde::Serialize;

/// p50/p99/max (and mean) of a set of samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// The nearest-rank percentile `p` (0–100] of `sorted` (ascending): the
/// smallest sample with at least p% of the samples at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises samples (sorts them in place).
pub fn summarize(samples: &mut [u64]) -> Summary {
    samples.sort_unstable();
    let count = samples.len();
    let mean_us = if count == 0 {
        0.0
    } else {
        samples.iter().map(|&v| v as f64).sum::<f64>() / count as f64
    };
    Summary {
        count,
        p50_us: percentile(samples, 50.0),
        p99_us: percentile(samples, 99.0),
        max_us: samples.last().copied().unwrap_or(0),
        mean_us,
    }
}

/// Microseconds as milliseconds for the table.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_hundred() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let summary = summarize(&mut samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_us, 50);
        assert_eq!(summary.p99_us, 99);
        assert_eq!(summary.max_us, 100);
        assert!((summary.mean_us - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_a_thousand_with_a_tail() {
        // 990 fast samples and 10 slow ones: p99 is still fast, max is slow.
        let mut samples = vec![1_000u64; 990];
        samples.extend([50_000u64; 10]);
        let summary = summarize(&mut samples);
        assert_eq!(summary.p50_us, 1_000);
        assert_eq!(summary.p99_us, 1_000);
        assert_eq!(summary.max_us, 50_000);
        // One more slow sample pushes p99 into the tail.
        samples.push(50_000);
        assert_eq!(summarize(&mut samples).p99_us, 50_000);
    }

    #[test]
    fn percentiles_of_tiny_sets() {
        assert_eq!(summarize(&mut []).p99_us, 0);
        let mut one = [7u64];
        let s = summarize(&mut one);
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (7, 7, 7));
        let sorted = [1u64, 2];
        assert_eq!(percentile(&sorted, 50.0), 1);
        assert_eq!(percentile(&sorted, 51.0), 2);
        assert_eq!(percentile(&sorted, 0.0), 1);
    }

    #[test]
    fn milliseconds_format() {
        assert_eq!(ms(1_234), "1.23");
        assert_eq!(ms(25_000), "25.00");
    }
}
