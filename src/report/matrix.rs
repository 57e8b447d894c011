//! Which part of a group's local × remote matrix a page shows: all of it up to
//! [`FULL_CELLS`] cells; beyond that the rows and columns that hold a pair that did not
//! succeed (a worse run, or a planned pair that never ran), or, when even those are more
//! than [`FULL_CELLS`] cells, a line per local test (docs/results.md, "Large runs").

use std::collections::BTreeSet;

use super::load::GroupRun;
use crate::tree::Status;

/// A matrix with more cells than this is shown collapsed.
pub const FULL_CELLS: usize = 400;

/// How a matrix is shown.
pub enum View {
    /// Every row and column.
    Full,
    /// Every pair succeeded.
    AllSucceeded,
    /// These rows and columns (indices into the group's locals and remotes); every
    /// pair outside them succeeded.
    Part(Vec<usize>, Vec<usize>),
    /// Too many rows and columns hold a pair that did not succeed: a line per local test
    /// (these rows).
    PerLocal(Vec<usize>),
}

/// Does the cell of `l` and `r` hold something other than SUCCESS (a worse run, or a
/// planned pair that never ran)?
pub fn notable(g: &GroupRun, l: &str, r: &str) -> bool {
    match g.cell(l, r) {
        Some(c) => c.status != Status::Success,
        None => g.planned(l, r),
    }
}

/// How the matrix of `g` is shown.
pub fn view(g: &GroupRun) -> View {
    if g.locals.len() * g.remotes.len() <= FULL_CELLS {
        return View::Full;
    }
    let mut rows = BTreeSet::new();
    let mut cols = BTreeSet::new();
    for (i, l) in g.locals.iter().enumerate() {
        for (j, r) in g.remotes.iter().enumerate() {
            if notable(g, l, r) {
                rows.insert(i);
                cols.insert(j);
            }
        }
    }
    if rows.is_empty() {
        View::AllSucceeded
    } else if rows.len() * cols.len() <= FULL_CELLS {
        View::Part(rows.into_iter().collect(), cols.into_iter().collect())
    } else {
        View::PerLocal(rows.into_iter().collect())
    }
}

/// One local test's line: its counts and the first remote tests it did not succeed with.
pub struct Line {
    pub local: String,
    pub success: usize,
    pub failed: usize,
    pub error: usize,
    pub not_run: usize,
    /// At most `max` names.
    pub with: Vec<String>,
}

impl Line {
    pub fn bad(&self) -> usize {
        self.failed + self.error + self.not_run
    }
}

/// The lines of local tests `rows`, the worst first.
pub fn lines(g: &GroupRun, rows: &[usize], max: usize) -> Vec<Line> {
    let mut out: Vec<Line> = rows
        .iter()
        .map(|&i| {
            let l = &g.locals[i];
            let mut line = Line {
                local: l.clone(),
                success: 0,
                failed: 0,
                error: 0,
                not_run: 0,
                with: Vec::new(),
            };
            for r in &g.remotes {
                match g.cell(l, r) {
                    Some(c) => match c.status {
                        Status::Success => line.success += 1,
                        Status::Failed => line.failed += 1,
                        Status::Error => line.error += 1,
                    },
                    None if g.planned(l, r) => line.not_run += 1,
                    None => continue,
                }
                if notable(g, l, r) && line.with.len() < max {
                    line.with.push(r.clone());
                }
            }
            line
        })
        .collect();
    out.sort_by_key(|l| std::cmp::Reverse(l.bad()));
    out
}
