//! authentik's page-number pagination (`page`, `page_size`, the `pagination` block), shared by
//! the lists.
use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;

use super::errors::detail;
use super::shape::Pagination;
use crate::config::RestShape;

/// A list's page size: the default, and the most a client may ask for (larger asks get it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSizes {
    pub default: u64,
    pub max: u64,
}

/// authentik's newest pagination settings (`pagination_default_page_size`,
/// `pagination_max_page_size`); also the audit list's.
pub const CURRENT: PageSizes = PageSizes {
    default: 20,
    max: 100,
};

/// authentik 2024.x: `PAGE_SIZE = 100` and no upper bound. A page is read and rendered in
/// one piece, so an unbounded size lets one request load the whole table: the server keeps
/// a cap of its own that no client chooses.
pub const DOCUMENTED: PageSizes = PageSizes {
    default: 100,
    max: 1000,
};

impl PageSizes {
    pub fn of(shape: RestShape) -> PageSizes {
        match shape {
            RestShape::Documented => DOCUMENTED,
            RestShape::Current => CURRENT,
        }
    }
}

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
    pub fn parse(
        params: &HashMap<String, String>,
        sizes: PageSizes,
    ) -> Result<PageRequest, Response> {
        let size = params
            .get("page_size")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map_or(sizes.default, |n| n.min(sizes.max));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn size(page_size: &str, sizes: PageSizes) -> u64 {
        let params = HashMap::from([("page_size".to_owned(), page_size.to_owned())]);
        PageRequest::parse(&params, sizes).unwrap().size
    }

    #[test]
    fn a_server_cap_bounds_what_clients_ask() {
        assert_eq!(size("5000", DOCUMENTED), 1000);
        assert_eq!(size("999", DOCUMENTED), 999);
        assert_eq!(size("5000", CURRENT), 100);
        assert_eq!(size("0", DOCUMENTED), 100);
        assert_eq!(size("-3", CURRENT), 20);
    }
}
