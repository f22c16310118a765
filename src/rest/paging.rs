//! authentik's page-number pagination (`page`, `page_size`, the `pagination` block), shared by
//! the lists.
use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;

use super::errors::detail;
use super::shape::Pagination;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// A requested page: a number, or `last`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    page: Option<u64>,
    pub size: u64,
}

fn invalid_page() -> Response {
    detail(StatusCode::NOT_FOUND, "Invalid page.")
}

impl PageRequest {
    /// Reads `page` and `page_size` as DRF does: a bad size falls back to the default, a bad
    /// page is a 404.
    #[allow(clippy::result_large_err)]
    pub fn parse(params: &HashMap<String, String>) -> Result<PageRequest, Response> {
        let size = params
            .get("page_size")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
        let page = match params.get("page").map(String::as_str) {
            None => Some(1),
            Some("last") => None,
            Some(p) => match p.parse::<u64>() {
                Ok(n) if n >= 1 && n <= u64::from(u32::MAX) => Some(n),
                _ => return Err(invalid_page()),
            },
        };
        Ok(PageRequest { page, size })
    }

    /// The offset of a numbered page before the count is known (`last` reads from 0).
    pub fn offset_guess(self) -> u64 {
        self.page.map_or(0, |p| (p - 1) * self.size)
    }

    /// The page number and row offset, once the count is known; pages past the end are a 404.
    #[allow(clippy::result_large_err)]
    pub fn resolve(self, count: u64) -> Result<(u64, u64), Response> {
        let total_pages = count.div_ceil(self.size).max(1);
        let page = self.page.unwrap_or(total_pages);
        if page > total_pages {
            return Err(invalid_page());
        }
        Ok((page, (page - 1) * self.size))
    }

    /// The `pagination` block for `rows` rows read at `page`.
    pub fn block(self, page: u64, count: u64, rows: usize) -> Pagination {
        let total_pages = count.div_ceil(self.size).max(1);
        let offset = (page - 1) * self.size;
        let (start_index, end_index) = if rows == 0 {
            (0, 0)
        } else {
            (offset + 1, offset + rows as u64)
        };
        Pagination {
            next: if page < total_pages { page + 1 } else { 0 },
            previous: page.saturating_sub(1),
            count,
            current: page,
            total_pages,
            start_index,
            end_index,
        }
    }
}
